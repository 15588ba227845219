"""Serving settings, from `TESSERA_SERVE_*` environment variables and an optional `.env`; nothing happens at import.

The BentoML worker processes read the same variables when they construct the service, so
`serving.run.serve_forever` passes its arguments on through the environment.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.core.settings import Settings, Workspace


class ServeSettings(BaseSettings):
    """Where the service reads from, who may call it, and how it trades detail for speed."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_SERVE_", env_file=".env", extra="ignore", frozen=True
    )

    # The workspace served (default: TESSERA_WORKSPACE, else the current directory).
    workspace: Path = Field(default_factory=lambda: Settings().workspace)
    # Comma-separated API keys; callers send one as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    api_keys: SecretStr = SecretStr("")
    # The "current time" of features and recommendations (default: the clock). A demo on a simulated
    # retailer sets it to the simulation's last day, so recency is measured from there.
    now: datetime | None = None
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    # Worker processes (one per core: each runs its own event loop; the APIs are short and CPU-bound).
    workers: int = Field(2, ge=1)
    # Seconds between checks of the registry's champions and the profile files (0: never reload).
    poll_seconds: float = Field(30.0, ge=0)
    # Per-request extras that cost more than the work itself on the hot path (docs/serving.md, "Speed").
    access_log: bool = False
    tracing: bool = False
    # Seconds before BentoML answers 504 to a request still running.
    timeout_seconds: float = Field(30.0, gt=0)
    # Churn probability thresholds between the low/medium and medium/high risk bands.
    risk_bands: tuple[float, float] = (0.3, 0.6)
    # Quantiles of predicted value (over a sample of customers, at load) between low/medium and medium/high.
    value_band_quantiles: tuple[float, float] = (0.5, 0.8)
    # Customers whose predicted value sets the value bands at load.
    value_band_sample: int = Field(2000, ge=10)
    # Weight of "similar to the cart" against the customer's own (0..1-scaled) recommendation score.
    cart_weight: float = Field(0.5, ge=0)
    # How much of the customer's history the 360 view shows.
    recent_orders: int = Field(10, ge=1)
    recent_interactions: int = Field(20, ge=1)

    @field_validator("risk_bands", "value_band_quantiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] <= 1:
            raise ValueError(f"expected two thresholds 0 <= low <= high <= 1, got {value}")
        return value

    def keys(self) -> tuple[bytes, ...]:
        """The accepted API keys, as bytes for a constant-time comparison."""
        raw = self.api_keys.get_secret_value()
        return tuple(key.strip().encode() for key in raw.split(",") if key.strip())

    def workspace_paths(self) -> Workspace:
        """The served workspace's paths."""
        return Workspace(self.workspace.resolve())
