"""Serving settings, from `TESSERA_SERVE_*` environment variables and an optional `.env`; nothing happens at import.

The BentoML worker processes read the same variables when they construct the service, so
`serving.run.serve_forever` passes its arguments on through the environment.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.auth import ApiKey, hashed_key, parse_key_hashes
from tessera.core.settings import Settings, Workspace
from training.bands import RISK_BANDS, VALUE_BAND_QUANTILES

log = logging.getLogger(__name__)


class ServeSettings(BaseSettings):
    """Where the service reads from, who may call it, and how it trades detail for speed."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_SERVE_", env_file=".env", extra="ignore", frozen=True
    )

    # The workspace served (default: TESSERA_WORKSPACE, else the current directory).
    workspace: Path = Field(default_factory=lambda: Settings().workspace)
    # Scoped API keys as salted hashes, `id:scope+scope:salt:sha256` comma-separated (`python -m serving.auth`
    # makes them); callers send the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
    api_key_hashes: SecretStr = SecretStr("")
    # Before scopes: plain comma-separated keys. Still honoured, each as a `read` and `events` key (what every
    # key could do then), hashed at start; move them to API_KEY_HASHES (docs/serving.md, "Access control").
    api_keys: SecretStr = SecretStr("")
    # Where the 360 view's accesses are recorded (key id, customer id, time); default: <workspace>/data/audit/.
    access_log_path: Path | None = None
    # Largest request body read, in bytes; a larger one is answered 413 before it is read.
    max_body_bytes: int = Field(1_000_000, ge=1024)
    # How far in the future a live event may be dated (clocks drift), in seconds.
    event_future_seconds: float = Field(300.0, ge=0)
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
    risk_bands: tuple[float, float] = RISK_BANDS
    # Quantiles of predicted value (over a sample of customers, at load) between low/medium and medium/high.
    value_band_quantiles: tuple[float, float] = VALUE_BAND_QUANTILES
    # Customers whose predicted value sets the value bands at load.
    value_band_sample: int = Field(2000, ge=10)
    # Weight of "similar to the cart" against the customer's own (0..1-scaled) recommendation score.
    cart_weight: float = Field(0.5, ge=0)
    # How much of the customer's history the 360 view shows.
    recent_orders: int = Field(10, ge=1)
    recent_interactions: int = Field(20, ge=1)
    # The service desk's session cookies (docs/desk.md): signed with this secret (default: derived from the API
    # key hashes, so every worker agrees and rotating the keys ends every session), `Secure` unless switched off.
    desk_secret: SecretStr = SecretStr("")
    desk_secure_cookie: bool = True

    @field_validator("risk_bands", "value_band_quantiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1] <= 1:
            raise ValueError(f"expected two thresholds 0 <= low <= high <= 1, got {value}")
        return value

    def legacy_keys(self) -> tuple[str, ...]:
        """The plain keys of TESSERA_SERVE_API_KEYS (the setting before scopes)."""
        raw = self.api_keys.get_secret_value()
        return tuple(key.strip() for key in raw.split(",") if key.strip())

    def api_keys_hashed(self) -> list[ApiKey]:
        """Every accepted key, hashed: the scoped ones, then the legacy ones as `read` + `events` keys."""
        keys = parse_key_hashes(self.api_key_hashes.get_secret_value())
        legacy = self.legacy_keys()
        if legacy:
            log.warning(
                "TESSERA_SERVE_API_KEYS holds plain keys: each is taken as a read+events key; "
                "move them to TESSERA_SERVE_API_KEY_HASHES (python -m serving.auth --stdin)"
            )
        keys += [hashed_key(f"legacy-{i}", ("read", "events"), key) for i, key in enumerate(legacy, start=1)]
        return keys

    def desk_session_secret(self) -> bytes:
        """The secret the desk signs its session cookies with."""
        own = self.desk_secret.get_secret_value()
        if own:
            return own.encode()
        keys = self.api_key_hashes.get_secret_value() + "|" + self.api_keys.get_secret_value()
        return hashlib.sha256(b"tessera-desk|" + keys.encode()).digest()

    def access_log_file(self) -> Path:
        """Where the 360 view's accesses are appended (JSON lines)."""
        return self.access_log_path or self.workspace_paths().data / "audit" / "access.jsonl"

    def workspace_paths(self) -> Workspace:
        """The served workspace's paths, with the MLflow stores `TESSERA_MLFLOW_*` name (the ones training wrote)."""
        return Workspace.from_settings(Settings(workspace=self.workspace.resolve()))
