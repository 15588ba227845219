"""Point-in-time training sets: the profile's orders and events for labels, the feature store for features.

LightGBM features come only from `features.store.training_frame` (Feast's point-in-time join); the profile
tables (read by `features.profile.read`) give labels (orders after each cutoff), the probabilistic
baseline's purchase history and the recommender's events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from training.errors import ModelSkipped
from training.labels import Cutoffs, labels_at

if TYPE_CHECKING:
    from feast import FeatureStore  # Feast is heavy: imported only when features are read

log = logging.getLogger(__name__)


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
    max_training_rows: int | None = None,
    seed: int = 42,
) -> LabelledFrames:
    """Entity rows (customers who bought before each cutoff) with labels, joined to the service's features.

    Raises ModelSkipped, before any feature is read, when the labels cannot train a model of `target`
    (`churned` or `value`): no training cutoff, too few customers, or a single outcome. Training rows beyond
    `max_training_rows` are cut by a seeded sample of customers (`sampled_for_training`).
    """
    if not cutoffs.training:
        raise ModelSkipped(cutoffs.note)
    labels = labels_at(events, [*cutoffs.training, cutoffs.validation], cutoffs.horizon_days)
    is_validation = labels["cutoff"] == cutoffs.validation
    require_trainable(labels[~is_validation], labels[is_validation], target, min_customers, cutoffs)
    if max_training_rows is not None:
        labels = sampled_for_training(labels, is_validation, max_training_rows, seed)
    # In one order whatever order the profile's tables came in: LightGBM's bagging reads rows by position, so the
    # same rows in another order made another model (validation Gini 0.7247 and 0.7215 on one workspace).
    frame = point_in_time_features(store, labels, feature_service).sort_values(
        ["cutoff", "customer_id"], kind="stable"
    )
    is_validation = frame["cutoff"] == cutoffs.validation
    return LabelledFrames(
        frame[~is_validation].reset_index(drop=True),
        frame[is_validation].reset_index(drop=True),
        feature_service,
    )


def sampled_for_training(
    labels: pd.DataFrame, is_validation: pd.Series, max_rows: int, seed: int
) -> pd.DataFrame:
    """`labels` with the training rows cut to about `max_rows` by a seeded sample of customers: a kept customer keeps
    its rows at every training cutoff, so each cutoff's population stays a fair sample of it; every validation row
    is kept. Unchanged when the training rows fit."""
    training = ~is_validation.to_numpy()
    rows = int(training.sum())
    if rows <= max_rows:
        return labels
    ids = labels["customer_id"].astype(str)
    draw = pd.util.hash_pandas_object(ids + f"\0{seed}", index=False).to_numpy() / 2.0**64
    kept = ~training | (draw < max_rows / rows)
    log.info(
        "training on %s of %s customer-cutoff rows: a seeded sample of customers (TESSERA_TRAINING_MAX_TRAINING_ROWS)",
        f"{int((kept & training).sum()):,}",
        f"{rows:,}",
    )
    return labels[kept]


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
