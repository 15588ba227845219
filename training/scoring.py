"""Batch scoring with the champions, as of a given time: churn and CLTV per customer, top-k recommendations.

Every output row carries Tessera's customer id and the source ids linked to it (`source:record_id`, from the
identity crosswalk). Consent is applied here: without `consent_profiling` a customer gets no churn or CLTV
score at all; without `consent_personalisation` recommendations are best sellers, flagged as such.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.profile.read import load_customers, load_events
from tessera.core.errors import InputError
from tessera.core.settings import Settings, Workspace
from tessera.core.timeutil import as_utc
from training import tracking
from training.datasets import point_in_time_features

if TYPE_CHECKING:  # Feast is heavy: imported only when features are read
    from features.store.settings import FeatureStoreSettings

WRITERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def source_ids(workspace: Workspace) -> pd.Series:
    """Per customer id: the linked source records as `source:record_id`, `;`-separated and sorted."""
    path = workspace.identity / "crosswalk.parquet"
    if not path.exists():
        raise InputError(f"{path} is missing: run `tessera resolve` (or `tessera run`) before scoring")
    crosswalk = pd.read_parquet(path, columns=["source", "record_id", "customer_id"]).dropna()
    keys = crosswalk["source"].astype(str) + ":" + crosswalk["record_id"].astype(str)
    return (
        keys.groupby(crosswalk["customer_id"])
        .agg(lambda ids: ";".join(sorted(set(ids))))
        .rename("source_ids")
    )


def _champion(workspace: Workspace, name: str) -> tuple[object, dict, str]:
    version = tracking.alias_version(workspace, name)
    found = None if version is None else tracking.load_champion(workspace, name, version)
    if found is None or version is None:
        raise InputError(
            f"no `{name}` champion in the current release of {tracking.shown_uri(tracking.registry_uri(workspace))}: run "
            f"`tessera train {name.replace('_', '-')}` first (a run that skipped it said why)"
        )
    return found[0], found[1], version


def _with_ids(workspace: Workspace, frame: pd.DataFrame) -> pd.DataFrame:
    ids = source_ids(workspace)
    frame.insert(1, "source_ids", frame["customer_id"].map(ids).fillna(""))
    return frame


def score_customers(
    workspace: Workspace,
    model: str,
    now: datetime,
    settings: Settings,
    store_settings: FeatureStoreSettings,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """`churn` or `cltv` scores of every customer who consented to profiling, with the champion as of `now`.

    `horizon_days`, when given, must be the champion's: a model predicts over the horizon it was trained for.
    """
    if model not in ("churn", "cltv"):
        raise ValueError(f"score works for churn or cltv, not {model!r}")
    moment = pd.Timestamp(as_utc(now))
    estimator, metadata, version = _champion(workspace, model)
    if horizon_days is not None and horizon_days != metadata.get("horizon_days"):
        raise InputError(
            f"the {model} champion (v{version}) predicts over {metadata.get('horizon_days')} days, not {horizon_days}: "
            f"train one with `tessera train {model} --horizon-days {horizon_days}` first"
        )
    customers = load_customers(workspace, settings)
    consented = customers.loc[customers["consent_profiling"], ["customer_id"]].reset_index(drop=True)
    entities = consented.assign(cutoff=moment)
    from features.store import open_store  # Feast is heavy: imported only when features are read

    store = open_store(workspace, store_settings)
    frame = point_in_time_features(store, entities, metadata.get("feature_service", f"{model}_v1"))
    # Without the cutoff the vectors are scored as the service scores them: a champion that fits BG/NBD where it
    # scores (the textbook ones, `model_on_bgnbd`) reads a labelled frame's cutoff as "fit on this population"
    # (`training.probabilistic.fitted_where_scored`).
    scores = estimator.predict(frame.drop(columns="cutoff"))
    scores = scores.assign(
        scored_at=moment.isoformat(), horizon_days=metadata.get("horizon_days"), model_version=version
    )
    return _with_ids(workspace, scores.reset_index(drop=True))


def recommend_all(
    workspace: Workspace, now: datetime, settings: Settings, k: int = 10, exclude_purchased: bool = False
) -> pd.DataFrame:
    """Top-k products for every customer as of `now` (one row per customer and rank)."""
    moment = pd.Timestamp(as_utc(now))
    events = load_events(workspace, moment)
    if events.loc[events["kind"] == "purchase", "sku"].dropna().empty:
        raise InputError(
            "no purchase names a product (orders without products, docs/sources.md): there is nothing to recommend"
        )
    model, _, version = _champion(workspace, "next_best_product")
    customers = load_customers(workspace, settings)
    parts = []
    for personalised, group in customers.groupby("consent_personalisation"):
        parts.append(
            model.recommend(
                events,
                moment,
                group["customer_id"].tolist(),
                k=k,
                exclude_purchased=exclude_purchased,
                personalised=bool(personalised),
            ).assign(consent_personalisation=bool(personalised))
        )
    recommendations = pd.concat(parts, ignore_index=True).sort_values(
        ["customer_id", "rank"], ignore_index=True
    )
    recommendations = recommendations.assign(scored_at=moment.isoformat(), model_version=version)
    return _with_ids(workspace, recommendations)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write CSV or Parquet, by the file's extension."""
    kind = WRITERS.get(Path(path).suffix.lower())
    if kind is None:
        raise InputError(f"{path}: expected a .csv or .parquet file name")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return Path(path)
