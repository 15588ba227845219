"""Feature store settings: which online store, registry and offline store Feast uses, from `TESSERA_FEAST_*`.

Two configurations, chosen by these settings alone (docs/feature_store.md):
- embedded (the default): SQLite online store and a file registry under the workspace's `data/feast/`;
- production: `TESSERA_FEAST_ONLINE_STORE=redis` and `TESSERA_FEAST_REGISTRY=sql` (PostgreSQL).
Connection strings may hold passwords: they come from the environment (or `.env`) only and are never
written into the generated feature_store.yaml, which refers to them as `${TESSERA_FEAST_...}`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeatureStoreSettings(BaseSettings):
    """Where Feast keeps online values, the registry and the offline tables."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_FEAST_", env_file=".env", extra="ignore", frozen=True
    )

    # Feast project: separates data sets sharing one Redis or one registry database.
    project: str = "tessera"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    registry: Literal["file", "sql"] = "file"
    # Feast's offline store over the Parquet tables. `duckdb` measured ~5x faster than `file` (dask) for
    # point-in-time retrieval and materialisation (docs/feature_store.md).
    offline_store: Literal["file", "duckdb"] = "duckdb"
    # Feast's Redis form: host:port[,password=...][,ssl=true][,db=N].
    redis_url: SecretStr = SecretStr("127.0.0.1:6379")
    # SQLAlchemy URL of the registry database.
    registry_url: SecretStr = SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    # How long a process trusts its cached copy of the registry before re-reading it.
    registry_cache_ttl_seconds: int = 60
    # Memory DuckDB may use while computing the feature tables (it spills to disk beyond it).
    duckdb_memory_limit: str = "3GB"

    @field_validator("project")
    @classmethod
    def _feast_project_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]*", value):
            raise ValueError(f"project {value!r}: letters, digits and '_' only, not starting with '_'")
        return value
