"""A simulated UK retailer (or a contacts-only registry): the exports, their sources.yaml and the truth behind them.

See docs/simulator.md for what it models, the noise it adds (with rates) and the files it writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.registry import simulate_registry
    from simulator.simulator import simulate_retailer

__all__ = ["simulate_registry", "simulate_retailer"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI reads the profile names from `config` at start, and a command that
    # does not simulate (`tessera resolve`) should not pay for importing the simulator.
    if name == "simulate_registry":
        from simulator.registry import simulate_registry

        return simulate_registry
    if name == "simulate_retailer":
        from simulator.simulator import simulate_retailer

        return simulate_retailer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
