"""Point-in-time training sets: the profile's orders and events for labels, the feature store for features.

LightGBM features come only from `features.store.training_frame` (Feast's point-in-time join); the profile
tables give labels (orders after each cutoff), the probabilistic baseline's purchase history and the
recommender's events. Readers push filters and aggregation into DuckDB, so only what is needed reaches pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from features.errors import InputError
from features.settings import Settings, Workspace
from training.errors import ModelSkipped
from training.labels import Cutoffs, labels_at

if TYPE_CHECKING:
    from feast import FeatureStore  # Feast is heavy: imported only when features are read

# Interaction event types the recommender reads (it uses the same names).
WEB_SIGNALS = ("add_to_cart", "product_view")


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _profile_table(workspace: Workspace, name: str) -> Path:
    path = workspace.profile / f"{name}.parquet"
    if not path.exists():
        raise InputError(f"{path} is missing: run `tessera profile` (or `tessera run`) before training")
    return path


def load_order_lines(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Order lines of identified customers up to `until`: customer_id, order_id, ordered_at, sku, amount, line_type."""
    path = _profile_table(workspace, "orders")
    with _connect() as con:
        return con.execute(
            "SELECT customer_id, order_id, ordered_at::TIMESTAMPTZ AS ordered_at, CAST(sku AS VARCHAR) AS sku, "
            "amount, line_type FROM read_parquet(?) WHERE customer_id IS NOT NULL AND ordered_at::TIMESTAMPTZ <= ?",
            [str(path), until],
        ).df()


def load_events(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Recommender signals up to `until`, one row per customer, sku, kind and day: occurred_at (latest), count.

    Purchases are sale lines of orders; add-to-carts and product views come from web interactions when the
    retailer has them.
    """
    orders = _profile_table(workspace, "orders")
    parts = [
        f"SELECT customer_id, CAST(sku AS VARCHAR) AS sku, 'purchase' AS kind, ordered_at::TIMESTAMPTZ AS occurred_at "
        f"FROM read_parquet('{orders}') WHERE customer_id IS NOT NULL AND line_type = 'sale' AND sku IS NOT NULL "
        f"AND ordered_at::TIMESTAMPTZ <= $until"
    ]
    interactions = workspace.profile / "interactions.parquet"
    if interactions.exists():
        kinds = ", ".join(f"'{name}'" for name in WEB_SIGNALS)
        parts.append(
            f"SELECT customer_id, CAST(sku AS VARCHAR), event_type, occurred_at::TIMESTAMPTZ "
            f"FROM read_parquet('{interactions}') WHERE customer_id IS NOT NULL AND sku IS NOT NULL "
            f"AND event_type IN ({kinds}) AND occurred_at::TIMESTAMPTZ <= $until"
        )
    union = " UNION ALL ".join(parts)
    with _connect() as con:
        return con.execute(
            f"SELECT customer_id, sku, kind, max(occurred_at) AS occurred_at, count(*)::DOUBLE AS count "
            f"FROM ({union}) GROUP BY customer_id, sku, kind, date_trunc('day', occurred_at) "
            # A parallel GROUP BY returns rows in any order; the recommender's fit depends on it.
            "ORDER BY customer_id, sku, kind, occurred_at",
            {"until": until},
        ).df()


def load_anonymous_purchases(workspace: Workspace, until: datetime) -> pd.DataFrame:
    """Sale lines of no customer up to `until`, shaped like `load_events`' purchases, for popularity and co-purchase.

    Each anonymous order stands for one buyer and one basket: its `customer_id` is
    `anonymous:<source>:<order_id>`, which no customer id can be. Concatenate these rows to the events only
    where products are counted (distinct buyers, baskets bought together), never where customers are
    (labels, BG/NBD, histories, evaluation): anonymous is anonymous.
    """
    orders = _profile_table(workspace, "orders")
    with _connect() as con:
        return con.execute(
            "SELECT 'anonymous:' || source || ':' || order_id AS customer_id, CAST(sku AS VARCHAR) AS sku, "
            "'purchase' AS kind, max(ordered_at::TIMESTAMPTZ) AS occurred_at, count(*)::DOUBLE AS count "
            "FROM read_parquet(?) WHERE customer_id IS NULL AND line_type = 'sale' AND sku IS NOT NULL "
            "AND ordered_at::TIMESTAMPTZ <= ? GROUP BY ALL ORDER BY customer_id, sku",
            [str(orders), until],
        ).df()


def load_catalogue(workspace: Workspace) -> pd.DataFrame | None:
    """The product catalogue (sku, category, available) when the retailer sent one, else None."""
    folder = workspace.canonical_table("products")
    if not any(folder.glob("*.parquet")):
        return None
    with _connect() as con:
        scan = f"read_parquet('{folder / '*.parquet'}', union_by_name = true)"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        category = "category" if "category" in present else "NULL::VARCHAR"
        available = "available" if "available" in present else "NULL::BOOLEAN"
        return con.execute(
            f"SELECT CAST(sku AS VARCHAR) AS sku, first({category}) AS category, bool_and({available}) AS available "
            f"FROM {scan} WHERE sku IS NOT NULL GROUP BY sku"
        ).df()


def load_customers(workspace: Workspace, settings: Settings) -> pd.DataFrame:
    """Every customer with the consent flags scoring needs: customer_id, consent_profiling, consent_personalisation.

    A flag the profile does not hold takes the configured default (`TESSERA_CONSENT_DEFAULTS`).
    """
    defaults = settings.consent_defaults
    path = _profile_table(workspace, "customers")
    with _connect() as con:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
        flags = []
        for purpose in ("profiling", "personalisation"):
            column, default = f"consent_{purpose}", "true" if defaults.get(purpose, False) else "false"
            flags.append(
                f"coalesce({column}, {default}) AS {column}"
                if column in present
                else f"{default} AS {column}"
            )
        return con.execute(f"SELECT customer_id, {', '.join(flags)} FROM read_parquet('{path}')").df()


def point_in_time_features(
    store: FeatureStore, entities: pd.DataFrame, feature_service: str, chunk_rows: int = 200_000
) -> pd.DataFrame:
    """The feature service's values for each (customer_id, cutoff) row, point-in-time correct; other columns kept.

    Asked in chunks of `chunk_rows` (in cutoff order), so memory follows the chunk, not the whole set; each
    retrieval also costs a pass over the offline tables, hence large chunks.
    """
    # Feast is heavy: imported only when features are read.
    from features.store import training_frame

    ordered = entities.sort_values("cutoff", kind="stable")
    parts = [
        training_frame(ordered.iloc[start : start + chunk_rows], feature_service, store=store)
        for start in range(0, len(ordered), chunk_rows)
    ]
    if not parts:  # no rows: still the service's columns
        return training_frame(entities, feature_service, store=store)
    return pd.concat(parts).loc[entities.index]


@dataclass(frozen=True)
class LabelledFrames:
    """A model's training and validation rows: features as of each cutoff plus the labels after it."""

    train: pd.DataFrame
    validation: pd.DataFrame
    feature_service: str

    @property
    def features(self) -> list[str]:
        """The feature columns (everything but keys and labels)."""
        return [c for c in self.train.columns if c not in ("customer_id", "cutoff", "churned", "value")]


def labelled_frames(
    store: FeatureStore,
    events: pd.DataFrame,
    cutoffs: Cutoffs,
    feature_service: str,
    target: str,
    min_customers: int,
) -> LabelledFrames:
    """Entity rows (customers who bought before each cutoff) with labels, joined to the service's features.

    Raises ModelSkipped, before any feature is read, when the labels cannot train a model of `target`
    (`churned` or `value`): no training cutoff, too few customers, or a single outcome.
    """
    if not cutoffs.training:
        raise ModelSkipped(cutoffs.note)
    labels = labels_at(events, [*cutoffs.training, cutoffs.validation], cutoffs.horizon_days)
    is_validation = labels["cutoff"] == cutoffs.validation
    require_trainable(labels[~is_validation], labels[is_validation], target, min_customers, cutoffs)
    frame = point_in_time_features(store, labels, feature_service)
    is_validation = frame["cutoff"] == cutoffs.validation
    return LabelledFrames(
        frame[~is_validation].reset_index(drop=True),
        frame[is_validation].reset_index(drop=True),
        feature_service,
    )


def require_trainable(
    train: pd.DataFrame, validation: pd.DataFrame, target: str, min_customers: int, cutoffs: Cutoffs
) -> None:
    """ModelSkipped with a one-line reason when these labels cannot train and validate a model of `target`."""
    window = f"{cutoffs.horizon_days} days"
    customers = len(validation)
    if customers < min_customers:
        raise ModelSkipped(
            f"only {customers} customers had bought before the validation cutoff "
            f"{cutoffs.validation:%Y-%m-%d}; at least {min_customers} are needed (TESSERA_TRAINING_MIN_CUSTOMERS)"
        )
    for name, rows in (("training", train), ("validation", validation)):
        if rows[target].nunique() > 1:
            continue
        if target == "churned":
            outcome = "churned" if rows[target].iloc[0] else "bought again"
            raise ModelSkipped(
                f"every customer in the {name} windows {outcome} within {window} "
                f"({len(rows)} customer-cutoffs): a churn model needs both outcomes"
            )
        raise ModelSkipped(
            f"every customer in the {name} windows spent the same ({rows[target].iloc[0]:g}) within {window} "
            f"({len(rows)} customer-cutoffs): there is no value to rank"
        )


def require_products(events: pd.DataFrame, min_customers: int) -> None:
    """ModelSkipped when the purchases cannot train a recommender: no product, one product, too few customers."""
    purchases = events[events["kind"] == "purchase"]
    named = purchases["sku"].dropna().astype(str).str.strip()
    skus = named[named != ""].unique()
    if len(skus) == 0:
        raise ModelSkipped("no purchase names a product: there is nothing to recommend")
    if len(skus) == 1:
        raise ModelSkipped(
            f"every purchase is of the same product ({skus[0]}): there is nothing to choose between"
        )
    customers = purchases["customer_id"].nunique()
    if customers < min_customers:
        raise ModelSkipped(
            f"only {customers} customers bought a product; at least {min_customers} are needed "
            "(TESSERA_TRAINING_MIN_CUSTOMERS)"
        )
