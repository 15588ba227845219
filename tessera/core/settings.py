"""Settings and the workspace layout: the one place that knows where Tessera keeps its files.

Nothing here touches the disk at import time; folders are created by the writers that need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The repository root, for development tools that write into a clone (the feature catalogue in docs/).
REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Process-wide settings, read from `TESSERA_*` environment variables and an optional `.env`."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", env_file=".env", extra="ignore", frozen=True)

    # Where data/ and mlruns/ go: the working directory, never the install location.
    workspace: Path = Field(default_factory=Path.cwd)
    # Region used to read phone numbers written without a country code (ISO 3166 alpha-2).
    default_phone_region: str = "GB"
    # Salt of the national-id hash (tessera.core.canonical.hash_national_ids). The default is for development
    # only: a production deployment sets its own secret TESSERA_ID_SALT and keeps it for good, since a new
    # salt makes every stored hash unmatched with the new ones.
    id_salt: str = "tessera-dev-only-salt"
    # Salt of the erasure suppression list (features.ingest.suppression); unset: a secret generated once per
    # workspace in data/suppression/salt.
    erasure_salt: SecretStr | None = None
    # Rows read per chunk when streaming a source export.
    ingest_chunk_rows: int = 200_000
    # Survivorship rules for the golden record (default: features/profile/survivorship.yaml).
    survivorship_rules: Path | None = None
    # Consent assumed for a purpose when a customer has no consent record for it. Marketing channels need
    # an opt-in; personalisation and profiling rest on the retailer's legitimate interest until withdrawn.
    consent_defaults: dict[str, bool] = {
        "email": False,
        "sms": False,
        "personalisation": True,
        "profiling": True,
    }
    # MLflow's tracking store and model registry as SQLAlchemy URLs, e.g. one PostgreSQL database per
    # workspace: `postgresql+psycopg://user:password@host:5432/tessera`. Unset: SQLite in the workspace's
    # `mlruns/`; the registry defaults to the tracking store. Artifacts stay in `mlruns/artifacts/` either way.
    mlflow_tracking_uri: SecretStr | None = None
    mlflow_registry_uri: SecretStr | None = None


@dataclass(frozen=True)
class Workspace:
    """Where one data set lives: `data/` for files, `mlruns/` for MLflow. Paths and URLs only, no I/O."""

    root: Path
    # MLflow's tracking and registry databases when not the SQLite file in `mlruns/` (they may hold a password).
    mlflow_tracking_uri: str | None = field(default=None, repr=False)
    mlflow_registry_uri: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        tracking, registry = settings.mlflow_tracking_uri, settings.mlflow_registry_uri
        return cls(
            settings.workspace.resolve(),
            mlflow_tracking_uri=None if tracking is None else tracking.get_secret_value(),
            mlflow_registry_uri=None if registry is None else registry.get_secret_value(),
        )

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sample(self) -> Path:
        """The simulated sample retailer's exports, written by the demo."""
        return self.data / "sample_retailer"

    @property
    def canonical(self) -> Path:
        """Canonical tables: `<source_type>/<source>.parquet`."""
        return self.data / "canonical"

    @property
    def quarantine(self) -> Path:
        """Rejected rows, one Parquet file per source, each row with the field and the reason."""
        return self.data / "quarantine"

    @property
    def identity(self) -> Path:
        """Standardised identity records, links with their evidence, clusters, ids and aliases."""
        return self.data / "identity"

    @property
    def desk(self) -> Path:
        """The service desk's derived search index (rebuilt from profile and identity; erasure deletes it)."""
        return self.data / "desk"

    @property
    def profile(self) -> Path:
        """Golden records, unified event tables and consent state, keyed by customer id."""
        return self.data / "profile"

    @property
    def reports(self) -> Path:
        """Per-run reports: ingestion accounting and data quality (JSON plus a readable summary)."""
        return self.data / "reports"

    @property
    def feature_repo_data(self) -> Path:
        """Feast registry, offline sources and the embedded online store."""
        return self.data / "feast"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    def canonical_table(self, source_type: str) -> Path:
        """A folder of Parquet files, one per source of that type: read it as one data set."""
        return self.canonical / source_type

    def canonical_file(self, source_type: str, source: str) -> Path:
        return self.canonical_table(source_type) / f"{source}.parquet"

    def quarantine_table(self, source: str) -> Path:
        return self.quarantine / f"{source}.parquet"
