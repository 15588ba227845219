"""Churn ideas scored on the validation window inside CDNOW's weeks 1-39 (never on weeks 40-78), in seconds.

    uv run python benchmarks/churn_validation.py --horizon-days 90
    uv run python benchmarks/churn_validation.py --horizon-days 273
    uv run python benchmarks/churn_validation.py --horizon-days 90 --cost   # CPU of the pipeline's churn fits

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
feature) and a fixed logit blend with BG/NBD; then the second round's ideas (`[idea]`): orders in the last
1/2/4/8/13 weeks, the last and the longest gap, the "overdue" z-score (days since the last order minus the
mean gap, over the gaps' spread), BG/NBD at 7/30/60-day sub-horizons, BG/NBD fitted at each row's own cutoff
(for validation: at the validation cutoff, no label read), all three together, weekly training cutoffs, and a
stacked logistic regression on the model's, BG/NBD's and recency's scores (learnt out of fold on the latest
training cutoff).

`--cost` instead times (CPU seconds) what the pipeline's churn step fits on this training frame: each
learned candidate (`training.recipes`' `lightgbm_rfm`, `model_regularised`, `model`) fitted with and without
its out-of-fold Platt scaling, the way candidates were fitted before and are now.
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


def extra_vectors(days: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Figures the vector lacks: orders in the last k weeks, the last and the longest gap, the "overdue" z-score."""
    before = days[days["t"] <= cutoff].sort_values("t")
    out = pd.DataFrame(index=pd.Index(before["customer_id"].unique(), name="customer_id"))
    for weeks in (1, 2, 4, 8, 13):
        recent = before[before["t"] > cutoff - 7 * weeks * DAY].groupby("customer_id").size()
        out[f"orders_{weeks}w"] = recent.reindex(out.index).fillna(0.0)
    gaps = before.groupby("customer_id")["t"].diff().dt.days
    per = gaps.groupby(before["customer_id"])
    out["last_gap"] = per.last().reindex(out.index)
    out["max_gap"] = per.max().reindex(out.index)
    silent = (cutoff - before.groupby("customer_id")["t"].max()).dt.days.astype(float)
    mean, std = per.mean().reindex(out.index), per.std().reindex(out.index)
    out["overdue_days"] = silent - mean
    out["overdue_z"] = (silent - mean) / std.where(std > 0)
    out["silence_over_max_gap"] = silent / out["max_gap"].where(out["max_gap"] > 0)
    return out.reset_index()


def labelled(days: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Vectors at `cutoff` with churned = no purchase in (cutoff, end] and window = its length in days."""
    out = vectors(days, cutoff)
    bought = days.loc[(days["t"] > cutoff) & (days["t"] <= end), "customer_id"].unique()
    return out.assign(churned=~out["customer_id"].isin(bought), window=float((end - cutoff) / DAY))


def with_quantities(frame: pd.DataFrame, quantities: object) -> pd.DataFrame:
    from training.churn import rhythm_features

    return frame.join(quantities.transform(frame)).join(rhythm_features(frame))


SUB_HORIZONS = (7, 30, 60)


def with_ideas(
    frame: pd.DataFrame, days: pd.DataFrame, cutoff: pd.Timestamp, quantities: object
) -> pd.DataFrame:
    """Untried ideas' columns: extra figures, BG/NBD at sub-horizons, and BG/NBD fitted at this cutoff itself."""
    from training.probabilistic import ProbabilisticFeatures

    out = frame.merge(extra_vectors(days, cutoff), on="customer_id", how="left")
    for h in SUB_HORIZONS:
        sub = quantities.transform(out, horizon_days=h)
        out[f"p_no_purchase_{h}d"] = sub["p_no_purchase"].to_numpy()
        out[f"expected_purchases_{h}d"] = sub["expected_purchases"].to_numpy()
    own = ProbabilisticFeatures(quantities.horizon_days).fit(out).transform(out)
    return out.join(own.add_suffix("_own"))


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


def ideas(days, plan, quantities, train, valid, whole, auc) -> dict[str, float]:  # noqa: ANN001
    """The ideas not tried before, each on the same validation window."""
    label, validation = plan.horizon_days, plan.validation
    by_cutoff = [
        with_ideas(train[train["cutoff"] == c].reset_index(drop=True), days, c, quantities)
        for c in plan.training
    ]
    tr = pd.concat(by_cutoff, ignore_index=True)
    va = with_ideas(valid, days, validation, quantities)
    extra = [
        *(f"orders_{w}w" for w in (1, 2, 4, 8, 13)),
        "last_gap",
        "max_gap",
        "overdue_days",
        "overdue_z",
        "silence_over_max_gap",
    ]
    sub = [f"{q}_{h}d" for h in SUB_HORIZONS for q in ("p_no_purchase", "expected_purchases")]
    own = [f"{q}_own" for q in PROBABILISTIC]

    def fitted(columns: list[str], **trees: object) -> float:
        return auc(lightgbm(tr, columns, **trees).predict_proba(va[columns])[:, 1])

    rows = {
        "  [idea] + k-week counts, gaps, overdue": fitted([*whole, *extra]),
        "  [idea] + BG/NBD at 7/30/60 days": fitted([*whole, *sub]),
        "  [idea] + BG/NBD fitted at each cutoff": fitted([*whole, *own]),
        "  [idea] all three": fitted([*whole, *extra, *sub, *own]),
        "  [idea] all three, 300 trees lr 0.03": fitted(
            [*whole, *extra, *sub, *own], n_estimators=300, learning_rate=0.03
        ),
        "  [idea] BG/NBD own P(no purchase) alone": auc(va["p_no_purchase_own"]),
    }
    # More training cutoffs: weekly from the first planned one to the latest (labels still end before validation).
    first, latest = plan.training[0], plan.training[-1]
    weekly = sorted(
        {*plan.training, *(first + 7 * k * DAY for k in range(0, 60) if first + 7 * k * DAY <= latest)}
    )
    more = pd.concat(
        [
            with_ideas(with_quantities(labelled(days, c, c + label * DAY), quantities), days, c, quantities)
            for c in weekly
        ],
        ignore_index=True,
    )
    columns = [*whole, *extra, *sub, *own]
    rows[f"  [idea] all three, {len(weekly)} weekly cutoffs"] = auc(
        lightgbm(more, columns).predict_proba(va[columns])[:, 1]
    )
    # Stacked: a logistic regression on the model's logit, BG/NBD's logit and log recency, learnt out of fold
    # on the latest training cutoff (each half scored by a model trained without it).
    from scipy.special import logit
    from sklearn.linear_model import LogisticRegression

    from training.churn import halves

    last = (tr["cutoff"] == latest).to_numpy()
    fold = halves(tr["customer_id"])
    out_of_fold = np.zeros(len(tr))
    for half in (0, 1):
        scored = last & (fold == half)
        out_of_fold[scored] = lightgbm(tr[~scored], whole).predict_proba(tr.loc[scored, whole])[:, 1]

    def stack_inputs(frame: pd.DataFrame, model: np.ndarray) -> np.ndarray:
        clip = lambda p: logit(np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6))  # noqa: E731
        return np.column_stack(
            [clip(model), clip(frame["p_no_purchase"]), np.log1p(frame["days_since_last_order"])]
        )

    stack = LogisticRegression(C=1.0).fit(
        stack_inputs(tr[last], out_of_fold[last]), tr.loc[last, "churned"].astype(int)
    )
    small = lightgbm(tr, whole).predict_proba(va[whole])[:, 1]
    rows["  [idea] stacked: logistic on model, BG/NBD, log recency"] = auc(
        stack.predict_proba(stack_inputs(va, small))[:, 1]
    )
    return rows


def fit_cost(train: pd.DataFrame, label: int) -> None:
    """CPU seconds of each learned churn candidate's fit, with and without its Platt scaling."""
    from training.churn import ChurnModel
    from training.probabilistic import RFM_FEATURES
    from training.recipes import REGULARISED_CHURN

    frame = train[["customer_id", "cutoff", *TRANSACTIONS]]
    settings = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 40}
    candidates = {
        "lightgbm_rfm": {"features": RFM_FEATURES, **settings},
        "model_regularised": {"horizon_days": label, **settings, **REGULARISED_CHURN},
        "model": {"horizon_days": label, **settings},
    }
    totals = {True: 0.0, False: 0.0}
    for name, params in candidates.items():
        for calibrate in (True, False):
            started = time.process_time()
            model = ChurnModel(**params).fit(frame, train["churned"], frame["cutoff"], calibrate=calibrate)
            spent = time.process_time() - started
            totals[calibrate] += spent
            print(
                f"  {name:<18} calibrated={calibrate!s:<5} {model.best_iteration_:>3} trees  CPU {spent:6.1f} s"
            )
    print(f"  all candidates: {totals[True]:.1f} s CPU with calibration, {totals[False]:.1f} s without")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--horizon-days", type=int, default=90)
    parser.add_argument("--cost", action="store_true", help="time the pipeline's churn fits instead")
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
        [
            with_quantities(labelled(days, c, c + label * DAY), quantities).assign(cutoff=c)
            for c in plan.training
        ],
        ignore_index=True,
    )
    valid = with_quantities(labelled(days, validation, validation + label * DAY), quantities).assign(
        cutoff=validation
    )
    if args.cost:
        return fit_cost(train, label)
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
    rows.update(ideas(days, plan, quantities, train, valid, whole, auc))
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
