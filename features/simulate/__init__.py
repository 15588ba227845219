"""A simulated UK retailer (or a contacts-only registry): the exports, their sources.yaml and the truth behind them.

See docs/simulator.md for what it models, the noise it adds (with rates) and the files it writes.
"""

from features.simulate.registry import simulate_registry
from features.simulate.simulator import simulate_retailer

__all__ = ["simulate_registry", "simulate_retailer"]
