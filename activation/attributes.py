"""The attributes table: one row per customer with every attribute a rule may use, computed with DuckDB.

Read from the profile (golden records, orders, interactions, consent) and the champions' batch scores, as of
a moment; timestamps are kept as seconds since the epoch, so the same rule evaluates alike in DuckDB (batch)
and SQLite (live). Windowed event counts are the ones the declared rules need (`Plan.counts`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from activation.catalogue import EVENT_KINDS, EventCount, last_column
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc
from training.bands import band, quantile_thresholds, value_band

if TYPE_CHECKING:
    from activation.settings import ActivationSettings
    from features.store.settings import FeatureStoreSettings

log = logging.getLogger(__name__)

# Each event kind as rows of the profile: (table, condition).
KIND_SOURCES = {
    "purchase": ("orders", "line_type = 'sale'"),
    "purchase_online": ("orders", "line_type = 'sale' AND channel = 'online'"),
    "purchase_store": ("orders", "line_type = 'sale' AND channel = 'store'"),
    "add_to_cart": ("interactions", "event_type = 'add_to_cart'"),
    "remove_from_cart": ("interactions", "event_type = 'remove_from_cart'"),
    "product_view": ("interactions", "event_type = 'product_view'"),
}
# top_skus (comma-separated, best first) rides along for the activations' payloads; rules cannot name it.
# The golden-record columns read, with their type when the profile lacks them (a retailer with fewer sources).
PROFILE_COLUMNS = {
    "country": "VARCHAR",
    "city": "VARCHAR",
    "postcode": "VARCHAR",
    "gender": "VARCHAR",
    "birth_date": "DATE",
    "loyalty_tier": "VARCHAR",
    "loyalty_points": "DOUBLE",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "last_order_at": "TIMESTAMPTZ",
    "first_order_at": "TIMESTAMPTZ",
    "loyalty_joined_at": "TIMESTAMPTZ",
    "n_orders": "BIGINT",
    "consent_email": "BOOLEAN",
    "consent_sms": "BOOLEAN",
    "consent_personalisation": "BOOLEAN",
    "consent_profiling": "BOOLEAN",
}
SCORE_COLUMNS = ("churn_probability", "cltv", "top_category", "top_skus")
TOP_K = 3


def _events_view(con: duckdb.DuckDBPyConnection, workspace: Workspace, now: datetime) -> None:
    """`events(customer_id, kind, sku, category, at)`: every event kind's rows up to `now`."""
    parts = []
    orders, interactions = workspace.profile / "orders.parquet", workspace.profile / "interactions.parquet"
    for kind, (table, condition) in KIND_SOURCES.items():
        path, at = (orders, "ordered_at") if table == "orders" else (interactions, "occurred_at")
        if path.exists():
            parts.append(
                f"SELECT customer_id, '{kind}' AS kind, CAST(sku AS VARCHAR) AS sku, epoch({at}::TIMESTAMPTZ) AS at_epoch "
                f"FROM read_parquet('{path}') WHERE customer_id IS NOT NULL AND {condition}"
            )
    if not parts:
        parts.append("SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::DOUBLE WHERE false")
    products = workspace.canonical_table("products")
    categories = (
        f"SELECT CAST(sku AS VARCHAR) AS sku, first(category) AS category FROM "
        f"read_parquet('{products / '*.parquet'}', union_by_name = true) GROUP BY 1"
        if any(products.glob("*.parquet"))
        else "SELECT NULL::VARCHAR AS sku, NULL::VARCHAR AS category WHERE false"
    )
    con.execute(
        f"CREATE TEMP TABLE events AS SELECT e.*, p.category FROM ({' UNION ALL '.join(parts)}) "
        f"e(customer_id, kind, sku, at_epoch) LEFT JOIN ({categories}) p USING (sku) WHERE e.at_epoch <= {now.timestamp()}"
    )


def compute_attributes(
    workspace: Workspace,
    counts: set[EventCount],
    now: datetime,
    scores: pd.DataFrame | None = None,
    risk_bands: tuple[float, float] = (0.3, 0.6),
    value_quantiles: tuple[float, float] = (0.5, 0.8),
) -> pd.DataFrame:
    """Every customer's attributes as of `now` (scores: customer_id + SCORE_COLUMNS, or None)."""
    customers = workspace.profile / "customers.parquet"
    if not customers.exists():
        raise InputError(f"{customers} is missing: run `tessera run` before computing segments")
    moment = as_utc(now).timestamp()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _events_view(con, workspace, as_utc(now))
    lasts = ", ".join(
        f"max(at_epoch) FILTER (WHERE kind = '{kind}') AS {last_column(kind)}" for kind in EVENT_KINDS
    )
    windows, params = [], []
    for count in sorted(counts, key=lambda c: c.column):
        condition = f"kind = '{count.kind}' AND at_epoch > {moment - count.hours * 3600.0}"
        if count.category is not None:
            condition += " AND category = ?"
            params.append(count.category)
        windows.append(f"count(*) FILTER (WHERE {condition})::DOUBLE AS {count.column}")
    orders = (
        "count(DISTINCT at_epoch) FILTER (WHERE kind = 'purchase_online')::DOUBLE AS orders_online, "
        "count(DISTINCT at_epoch) FILTER (WHERE kind = 'purchase_store')::DOUBLE AS orders_store"
    )
    per_customer = f"SELECT customer_id, {', '.join([lasts, orders, *windows])} FROM events GROUP BY 1"
    monetary = ""
    if (workspace.profile / "orders.parquet").exists():
        monetary = (
            f"LEFT JOIN (SELECT customer_id, sum(amount) AS monetary FROM "
            f"read_parquet('{workspace.profile / 'orders.parquet'}') WHERE customer_id IS NOT NULL "
            "GROUP BY 1) m USING (customer_id)"
        )
    web = workspace.profile / "interactions.parquet"
    uses_web = (
        f"LEFT JOIN (SELECT DISTINCT customer_id, true AS uses_web FROM read_parquet('{web}') "
        f"WHERE channel = 'web' AND customer_id IS NOT NULL) w USING (customer_id)"
        if web.exists()
        else "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::BOOLEAN AS uses_web) w USING (customer_id)"
    )
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{customers}')").fetchall()}
    golden = ", ".join(
        (f"{c}::{t} AS {c}" if c in present else f"NULL::{t} AS {c}") for c, t in PROFILE_COLUMNS.items()
    )
    frame = con.execute(
        f"""
        SELECT c.customer_id, c.country, c.city, c.postcode, c.gender,
               date_diff('year', c.birth_date, to_timestamp({moment})::DATE)::DOUBLE AS age,
               c.loyalty_tier, c.loyalty_points,
               c.email IS NOT NULL AS has_email, c.phone IS NOT NULL AS has_phone,
               ({moment} - epoch(c.last_order_at::TIMESTAMPTZ)) / 86400.0 AS recency_days,
               coalesce(c.n_orders, 0)::DOUBLE AS frequency, coalesce(m.monetary, 0)::DOUBLE AS monetary,
               ({moment} - epoch(least(c.first_order_at::TIMESTAMPTZ, c.loyalty_joined_at::TIMESTAMPTZ))) / 86400.0 AS tenure_days,
               coalesce(e.orders_online, 0) AS orders_online, coalesce(e.orders_store, 0) AS orders_store,
               coalesce(e.orders_online, 0) > 0 AS uses_online, coalesce(e.orders_store, 0) > 0 AS uses_store,
               coalesce(w.uses_web, false) AS uses_web,
               ((coalesce(e.orders_online, 0) > 0)::INT + (coalesce(e.orders_store, 0) > 0)::INT
                 + coalesce(w.uses_web, false)::INT)::DOUBLE AS n_channels,
               c.consent_email, c.consent_sms, c.consent_personalisation, c.consent_profiling,
               e.* EXCLUDE (customer_id, orders_online, orders_store)
        FROM (SELECT customer_id, {golden} FROM read_parquet('{customers}')) c
        LEFT JOIN ({per_customer}) e USING (customer_id) {monetary} {uses_web}
        ORDER BY c.customer_id
        """,
        params,
    ).df()
    con.close()
    frame = _with_scores(frame, scores, risk_bands, value_quantiles)
    for column in [c.column for c in counts]:
        frame[column] = frame[column].fillna(0.0)
    return frame


def _with_scores(
    frame: pd.DataFrame,
    scores: pd.DataFrame | None,
    risk_bands: tuple[float, float],
    value_quantiles: tuple[float, float],
) -> pd.DataFrame:
    """The model outputs and their bands; none for customers without profiling consent or scores."""
    if scores is None:
        scores = pd.DataFrame({"customer_id": pd.Series(dtype=str)})
    scores = scores.reindex(columns=["customer_id", *SCORE_COLUMNS])
    frame = frame.merge(scores, on="customer_id", how="left")
    consented = frame["consent_profiling"].fillna(False).astype(bool)
    for column in ("churn_probability", "cltv"):
        frame[column] = frame[column].astype(float).where(consented)
    thresholds = quantile_thresholds(frame["cltv"].dropna(), value_quantiles)
    frame["risk_band"] = [None if pd.isna(p) else band(p, risk_bands) for p in frame["churn_probability"]]
    frame["value_band"] = [None if pd.isna(v) else value_band(v, thresholds) for v in frame["cltv"]]
    for column in ("top_category", "top_skus"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def champion_scores(
    workspace: Workspace,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    activation: ActivationSettings,
) -> pd.DataFrame | None:
    """Churn probability, value and top recommended category per customer from the current champions.

    A model without a champion leaves its column empty (logged), so segments still compute."""
    from training.scoring import recommend_all, score_customers  # MLflow and Feast: only when scoring

    frame: pd.DataFrame | None = None
    parts: list[pd.DataFrame] = []
    for model, column, take in (("churn", "churn_probability", "probability"), ("cltv", "cltv", "cltv")):
        try:
            scored = score_customers(workspace, model, now, settings, store_settings)
        except InputError as exc:
            log.warning("segments without %s scores: %s", model, exc)
            continue
        if take not in scored.columns:
            take = next(c for c in scored.columns if c.startswith(take[:4]) or c == "churn_probability")
        parts.append(scored[["customer_id", take]].rename(columns={take: column}))
    try:
        recommended = recommend_all(workspace, now, settings, k=TOP_K)
        recommended = recommended.loc[recommended["consent_personalisation"]]
        top = recommended.loc[
            recommended["rank"] == recommended.groupby("customer_id")["rank"].transform("min")
        ]
        top = top[["customer_id", "sku"]]
        skus = (
            recommended.sort_values(["customer_id", "rank"])
            .groupby("customer_id")["sku"]
            .agg(lambda s: ",".join(map(str, s)))
        )
        parts.append(skus.rename("top_skus").reset_index())
        from features.profile.read import load_catalogue

        catalogue = load_catalogue(workspace)
        if catalogue is not None:
            top = top.merge(catalogue[["sku", "category"]], on="sku", how="left")
            parts.append(top[["customer_id", "category"]].rename(columns={"category": "top_category"}))
    except InputError as exc:
        log.warning("segments without top recommended category: %s", exc)
    for part in parts:
        frame = part if frame is None else frame.merge(part, on="customer_id", how="outer")
    return frame
