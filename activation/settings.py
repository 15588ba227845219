"""Activation settings, from `TESSERA_ACTIVATION_*` environment variables and an optional `.env`.

Nothing happens at import; entry points (the CLI, the service, benchmarks) build them and pass them down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tessera.core.settings import Workspace
from training.bands import RISK_BANDS, VALUE_BAND_QUANTILES

# The shipped examples, used when no other file is configured.
EXAMPLES = Path(__file__).resolve().parent


class ActivationSettings(BaseSettings):
    """Where the segment and trigger declarations are, and how the delivery worker sends."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_ACTIVATION_", env_file=".env", extra="ignore", frozen=True
    )

    segments: Path = EXAMPLES / "segments.yaml"
    triggers: Path = EXAMPLES / "triggers.yaml"
    # RabbitMQ for the `rabbitmq` destinations (an AMQP URL; it may hold a password).
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # The exchange activations are published to (declared durable, topic; "" is the default exchange).
    amqp_exchange: str = "tessera.activations"
    # The secret webhooks are signed with (HMAC-SHA256 of the body, header X-Tessera-Signature).
    webhook_secret: SecretStr = SecretStr("tessera-dev-only-webhook-secret")
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    # Tries of a webhook before its dead-letter record, and the first wait between them (doubled each time).
    max_attempts: int = Field(5, ge=1)
    backoff_seconds: float = Field(2.0, ge=0)
    # Activations taken from the outbox per batch, and the worker's pause when the outbox is empty.
    batch_size: int = Field(1000, ge=1)
    poll_seconds: float = Field(1.0, gt=0)
    # At most this many activations per second (a channel's own rate limit; 0: as fast as it goes).
    rate_limit_per_second: float = Field(0.0, ge=0)
    # Start the delivery worker inside `tessera serve`.
    worker_in_serve: bool = False
    # Score bands, as serving has them (training.bands).
    risk_bands: tuple[float, float] = RISK_BANDS
    value_band_quantiles: tuple[float, float] = VALUE_BAND_QUANTILES


def activation_dir(workspace: Workspace) -> Path:
    """Membership, outbox and exports of a workspace."""
    return workspace.data / "activation"


def membership_db(workspace: Workspace) -> Path:
    return activation_dir(workspace) / "membership.sqlite"


def exports_dir(workspace: Workspace) -> Path:
    return activation_dir(workspace) / "exports"
