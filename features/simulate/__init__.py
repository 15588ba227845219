"""A simulated UK retailer: every source system's export, its sources.yaml, and the truth behind them.

See docs/simulator.md for what it models, the noise it adds (with rates) and the files it writes.
"""

from features.simulate.simulator import simulate_retailer

__all__ = ["simulate_retailer"]
