"""The champions against a known future: the simulator's truth of what each person bought after `now`.

`truth/future_orders.parquet` is keyed by person; `truth/identity.csv` maps (source, record_id) to person and
the identity crosswalk maps the same pair to Tessera's customer id, so each customer gets the future of the
person most of their records belong to. Every model and baseline predicts as of `now` from data up to
`now` only, and is judged on (now, now + horizon].
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.profile.read import load_catalogue, load_events, load_order_lines
from tessera.core.settings import Workspace
from tessera.core.timeutil import as_utc
from training import tracking
from training.baselines import model_and_baselines, signal_params
from training.datasets import point_in_time_features
from training.evaluate import classification_metrics, ranking_metrics, value_metrics
from training.labels import days_since_last_sale, order_events, purchase_labels, sales
from training.probabilistic import ProbabilisticCLV
from training.settings import TrainingSettings

if TYPE_CHECKING:  # Feast is heavy: imported only when features are read
    from features.store.settings import FeatureStoreSettings


def customer_persons(workspace: Workspace, truth: Path) -> pd.Series:
    """customer_id → person_id: the person most of the customer's source records belong to."""
    identity = pd.read_csv(truth / "identity.csv", dtype=str)
    crosswalk = pd.read_parquet(
        workspace.identity / "crosswalk.parquet", columns=["source", "record_id", "customer_id"]
    )
    joined = crosswalk.astype({"record_id": str}).merge(identity, on=["source", "record_id"])
    counts = joined.groupby(["customer_id", "person_id"]).size().rename("n").reset_index()
    return (
        counts.sort_values(["customer_id", "n"], ascending=[True, False])
        .drop_duplicates("customer_id")
        .set_index("customer_id")["person_id"]
    )


def future_lines(workspace: Workspace, truth: Path, now: datetime, horizon_days: int) -> pd.DataFrame:
    """The true order lines of (now, now + horizon] per customer: customer_id, order_id, ordered_at, sku, amount, line_type."""
    moment = pd.Timestamp(as_utc(now))
    future = pd.read_parquet(truth / "future_orders.parquet")
    future = future[
        (future["ordered_at"] > moment) & (future["ordered_at"] <= moment + pd.Timedelta(days=horizon_days))
    ]
    persons = customer_persons(workspace, truth)
    customers = persons.rename_axis("customer_id").reset_index()
    lines = customers.merge(future, on="person_id")
    return lines.assign(amount=lines["quantity"] * lines["unit_price"], sku=lines["sku"].astype(str))[
        ["customer_id", "order_id", "ordered_at", "sku", "amount", "line_type"]
    ]


def accuracy_against_truth(
    workspace: Workspace,
    truth: Path,
    now: datetime,
    settings: TrainingSettings,
    store_settings: FeatureStoreSettings,
) -> dict[str, Any]:
    """Each champion and its baselines scored as of `now` against the true future: churn, CLTV, next-best-product."""
    from features.store import open_store  # Feast is heavy: imported only when features are read

    store = open_store(workspace, store_settings)
    moment = pd.Timestamp(as_utc(now))
    horizon = settings.horizon_days
    history = order_events(load_order_lines(workspace, moment))
    lines = future_lines(workspace, truth, moment, horizon)
    # The true future as labels: churned and value after `now` for everyone who bought before it.
    outcome = purchase_labels(pd.concat([history, order_events(lines)]), moment, horizon)
    population = outcome["customer_id"]
    past_sales = sales(history)
    probabilistic = (
        ProbabilisticCLV().fit(past_sales, moment).predict(past_sales, moment, horizon).reindex(population)
    )
    recency = days_since_last_sale(history, population, moment)
    entities = outcome[["customer_id", "cutoff"]]
    report: dict[str, Any] = {
        "now": moment.isoformat(),
        "horizon_days": horizon,
        "customers": len(population),
    }

    versions = tracking.champions(workspace)  # one release: the three champions of one training
    churn, churn_meta = _champion(workspace, "churn", versions) or (None, {})
    if churn is not None:
        frame = point_in_time_features(store, entities, churn_meta["feature_service"])
        y = outcome["churned"].to_numpy(dtype=int)
        p = churn.predict_proba(frame)
        report["churn"] = {
            "candidate": churn_meta.get("candidate", "model"),
            "model": {
                **classification_metrics(y, p),
                "mean_probability": float(p.mean()),
                "churn_rate": float(y.mean()),
            },
            "days_since_last_purchase": classification_metrics(y, recency),
            "bgnbd_p_no_purchase": classification_metrics(y, probabilistic["p_no_purchase"].to_numpy()),
        }
    cltv, cltv_meta = _champion(workspace, "cltv", versions) or (None, {})
    if cltv is not None:
        frame = point_in_time_features(store, entities, cltv_meta["feature_service"])
        y = outcome["value"].to_numpy()
        report["cltv"] = {
            "candidate": cltv_meta.get("candidate", "model"),
            "model": value_metrics(y, cltv.predict(frame)["cltv"].to_numpy()),
            "bgnbd_gamma_gamma": value_metrics(y, probabilistic["expected_value"].to_numpy()),
        }
    recommender = _champion(workspace, "next_best_product", versions)
    if recommender is not None:
        items = lines.loc[lines["line_type"] == "sale", ["customer_id", "sku"]].drop_duplicates()
        events = load_events(workspace, moment)
        report["next_best_product"] = _recommendations(
            events,
            recommender[0],
            items,
            moment,
            settings.recommend_k,
            signal_params(settings),
            load_catalogue(workspace),
        )
    return report


def _champion(workspace: Workspace, name: str, versions: dict[str, str]) -> tuple[Any, dict[str, Any]] | None:
    return None if name not in versions else tracking.load_champion(workspace, name, versions[name])


def _recommendations(
    events: pd.DataFrame,
    model: Any,
    truth: pd.DataFrame,
    moment: pd.Timestamp,
    k: int,
    base: dict[str, Any],
    catalogue: pd.DataFrame | None,
) -> dict[str, Any]:
    """Recall/NDCG@k of the recommender and the baselines for customers with history who bought in the window."""
    customers = sorted(set(events["customer_id"]) & set(truth["customer_id"]))
    truth = truth[truth["customer_id"].isin(customers)]
    methods = model_and_baselines(model, events, moment, customers, k, base, catalogue)
    return {name: ranking_metrics(recommended, truth, k) for name, recommended in methods.items()}
