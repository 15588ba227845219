"""Churn ideas scored on the validation window inside CDNOW's weeks 1-39 (never on weeks 40-78), in seconds.

    uv run python benchmarks/churn_validation.py --horizon-days 90
    uv run python benchmarks/churn_validation.py --horizon-days 273

The run as `benchmarks/real_data.py` makes it (weeks 1-39 as the export, `--now` 1997-10-01), with the time
split `training.labels.plan_cutoffs` plans from the training settings' defaults: at 90 days five training
cutoffs (1997-03-02 to 04-03) and validation on 1997-07-02; at 273 days 106-day labels, one training cutoff
(1997-03-02) and validation on 1997-06-16. Nothing here reads the 39 weeks after the export.

The churn vector's transaction figures (`churn_v1` on an orders-only export: orders and spend in 30 / 90 /
365 days and to date, days since the last and the first order, mean and spread of the gaps, mean order
value; an order is a customer's purchase day, as the export's order ids make it) are recomputed here from
the orders in pandas, with BG/NBD's quantities (`training.probabilistic.ProbabilisticFeatures`, fitted on the
latest training cutoff) and the rhythm ratios (`training.churn.rhythm_features`). No Feast, no MLflow: a
variant costs seconds, so ideas can be tried before they are built into `training/`. LightGBM here runs a
fixed number of trees (no early stopping), so its figures are close to, not equal to, the pipeline's.

Prints the validation ROC AUC of recency, BG/NBD P(no purchase), and LightGBM variants: default and small
trees, monotone constraints on recency and frequency, the transaction figures alone, extra "censored"
cutoffs (weekly after the last training cutoff, labels cut at the validation cutoff, the window's length a
feature) and a fixed logit blend with BG/NBD.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from real_data import CDNOW_NOW, cdnow_file, read_cdnow  # also keeps this folder off the path

DAY = pd.Timedelta(days=1)
TRANSACTIONS = (
    "days_since_last_order",
    "tenure_days",
    "orders_lifetime",
    "spend_lifetime",
    "orders_30d",
    "spend_30d",
    "orders_90d",
    "spend_90d",
    "orders_365d",
    "spend_365d",
    "mean_days_between_orders",
    "std_days_between_orders",
    "avg_order_value",
)
PROBABILISTIC = ("p_alive", "p_no_purchase", "expected_purchases", "expected_value")
RHYTHM = ("silence_over_gap", "silence_over_tenure", "orders_per_year", "recent_order_share")
# +1: a larger value can only raise the churn score; -1: only lower it.
MONOTONE = {
    "days_since_last_order": 1,
    "orders_lifetime": -1,
    "orders_30d": -1,
    "orders_90d": -1,
    "orders_365d": -1,
    "p_no_purchase": 1,
    "p_alive": -1,
    "expected_purchases": -1,
    "orders_per_year": -1,
}
SMALL_TREES = {"num_leaves": 7, "min_child_samples": 200, "n_estimators": 150}
DEFAULT_TREES = {"num_leaves": 31, "min_child_samples": 40, "n_estimators": 300}


def purchase_days(now: pd.Timestamp) -> pd.DataFrame:
    """CDNOW's orders before `now`, one row per customer and purchase day (c, t, amount)."""
    orders = read_cdnow(cdnow_file())
    orders = orders[orders["ordered_at"] < now]
    day = orders["ordered_at"].dt.floor("D")
    return orders.assign(t=day).groupby(["customer_id", "t"], as_index=False)["amount"].sum()


def vectors(days: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The transaction figures of every customer who bought at or before `cutoff`, as of it."""
    before = days[days["t"] <= cutoff].sort_values("t")
    grouped = before.groupby("customer_id")
    age = lambda moment: (cutoff - moment).dt.days.astype(float)  # noqa: E731
    out = pd.DataFrame(
        {
            "days_since_last_order": age(grouped["t"].max()),
            "tenure_days": age(grouped["t"].min()),
            "orders_lifetime": grouped.size().astype(float),
            "spend_lifetime": grouped["amount"].sum(),
        }
    )
    for window in (30, 90, 365):
        recent = before[before["t"] > cutoff - window * DAY].groupby("customer_id")
        out[f"orders_{window}d"] = recent.size().reindex(out.index).fillna(0.0)
        out[f"spend_{window}d"] = recent["amount"].sum().reindex(out.index).fillna(0.0)
    gaps = before.groupby("customer_id")["t"].diff().dt.days.groupby(before["customer_id"])
    out["mean_days_between_orders"] = gaps.mean()
    out["std_days_between_orders"] = gaps.std()
    out["avg_order_value"] = out["spend_lifetime"] / out["orders_lifetime"]
    return out.rename_axis("customer_id").reset_index()


def labelled(days: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Vectors at `cutoff` with churned = no purchase in (cutoff, end] and window = its length in days."""
    out = vectors(days, cutoff)
    bought = days.loc[(days["t"] > cutoff) & (days["t"] <= end), "customer_id"].unique()
    return out.assign(churned=~out["customer_id"].isin(bought), window=float((end - cutoff) / DAY))


def with_quantities(frame: pd.DataFrame, quantities: object) -> pd.DataFrame:
    from training.churn import rhythm_features

    return frame.join(quantities.transform(frame)).join(rhythm_features(frame))


def lightgbm(train: pd.DataFrame, columns: list[str], monotone: bool = False, **trees: object) -> object:
    import lightgbm as lgb

    params = {
        **SMALL_TREES,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": 42,
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": 2,
        "verbose": -1,
        **trees,
    }
    if monotone:
        params["monotone_constraints"] = [MONOTONE.get(c, 0) for c in columns]
    return lgb.LGBMClassifier(**params).fit(train[columns], train["churned"].astype(int))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args()
    from scipy.special import logit
    from sklearn.metrics import roc_auc_score

    from training.labels import plan_cutoffs
    from training.probabilistic import ProbabilisticFeatures
    from training.settings import TrainingSettings

    started = time.process_time()
    now = pd.Timestamp(CDNOW_NOW, tz="UTC")
    days = purchase_days(now)
    s = TrainingSettings()
    plan = plan_cutoffs(
        days["t"].min(),
        days["t"].max(),
        now,
        horizon_days=args.horizon_days,
        training_cutoffs=s.training_cutoffs,
        spacing_days=s.cutoff_spacing_days,
        min_history_days=s.min_history_days,
        min_horizon_days=s.min_horizon_days,
    )
    label = plan.horizon_days
    latest, validation = plan.training[-1], plan.validation
    quantities = ProbabilisticFeatures(label).fit(vectors(days, latest))
    train = pd.concat(
        [with_quantities(labelled(days, c, c + label * DAY), quantities) for c in plan.training],
        ignore_index=True,
    )
    valid = with_quantities(labelled(days, validation, validation + label * DAY), quantities)
    extra = [latest + 7 * k * DAY for k in range(1, 60) if latest + 7 * k * DAY <= validation - 28 * DAY]
    censored = pd.concat(
        [train, *(with_quantities(labelled(days, c, validation), quantities) for c in extra)],
        ignore_index=True,
    )
    whole = [*TRANSACTIONS, *PROBABILISTIC, *RHYTHM]
    y = valid["churned"].astype(int)

    def auc(score: np.ndarray) -> float:
        return float(roc_auc_score(y, score))

    def scored(model: object, columns: list[str]) -> np.ndarray:
        return model.predict_proba(valid[columns])[:, 1]

    small = scored(lightgbm(train, whole), whole)
    rows = {
        "recency (days since the last order)": auc(valid["days_since_last_order"]),
        "BG/NBD P(no purchase)": auc(valid["p_no_purchase"]),
        "LightGBM, whole vector, default trees": auc(scored(lightgbm(train, whole, **DEFAULT_TREES), whole)),
        "LightGBM, whole vector, small trees": auc(small),
        "  + monotone recency / frequency": auc(scored(lightgbm(train, whole, monotone=True), whole)),
        "  transaction figures only": auc(scored(lightgbm(train, list(TRANSACTIONS)), list(TRANSACTIONS))),
        f"  + {len(extra)} censored cutoffs, window a feature": auc(
            lightgbm(censored, [*whole, "window"]).predict_proba(valid[[*whole, "window"]])[:, 1]
        ),
    }
    bgnbd = logit(valid["p_no_purchase"].clip(1e-6, 1 - 1e-6).to_numpy())
    for weight in (0.5, 0.75):
        rows[f"  logit blend, {weight} model + {1 - weight} BG/NBD"] = auc(
            weight * logit(np.clip(small, 1e-6, 1 - 1e-6)) + (1 - weight) * bgnbd
        )
    print(
        f"CDNOW weeks 1-39, horizon {args.horizon_days} days: {label}-day labels, training cutoffs "
        f"{', '.join(f'{c:%Y-%m-%d}' for c in plan.training)} ({len(train)} rows), validation {validation:%Y-%m-%d} "
        f"({len(valid)} customers, churn rate {y.mean():.3f})"
    )
    for name, value in rows.items():
        print(f"  {name:<48} validation ROC AUC {value:.4f}")
    print(f"CPU {time.process_time() - started:.0f} s")


if __name__ == "__main__":
    main()
