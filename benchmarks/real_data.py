"""Tessera on a real purchase log, run as a new user would, beside textbook baselines computed here from the export.

    uv run python benchmarks/real_data.py [--horizon-days 90] [--customers-limit N] [--keep WORKDIR]
    uv run python benchmarks/real_data.py --horizon-days 273          # CDNOW's 39 weeks after the export
    uv run python benchmarks/real_data.py --orders FILE --now 2011-09-01 [--horizon-days 100]
    uv run python benchmarks/real_data.py --shape hard [--customers 5000] [--seed 42]

Default data: CDNOW's full purchase log (23,570 customers, 1997-01-01 to 1998-06-30), the file that ships with
the `lifetimes` package. Weeks 1-39 become an orders-only export (no products), `--now` is the start of week 40
(1997-10-01) and the truth is what each customer bought in the following `--horizon-days` (273 days = weeks
40-78).

`--orders FILE` runs any other log the same way: a CSV with a header and one row per order line,

    customer_id,ordered_at,amount[,sku]

`ordered_at` an ISO 8601 date or time (UTC unless it has an offset), `amount` the line's value (> 0; leave
returns out), `sku` optional (without it the log is "orders without products"). Rows before `--now` (default:
the log's last day minus the horizon) are the export; the rest is the truth.

`--shape hard` (or `default`) scores a simulated retailer instead (`tessera simulate --profile SHAPE`, all
its sources, docs/simulator.md), `--now` the day after its last day. The baselines see the exports' sale
lines as ingestion reads them, owned by the true person (truth/identity.csv; anonymous lines are nobody's),
and the truth is the simulator's future orders.

The script writes the export and its sources.yaml into a temporary workspace and calls the README's commands
in their own processes: `tessera run --sources sources.yaml --now NOW` (ingest, resolve, profile, feature
store, train), then `tessera score churn|cltv --out` and `tessera recommend --all --out`, each after
`tessera train MODEL` when `run` failed before registering that model; TESSERA_TRAINING_HORIZON_DAYS is set
to the horizon. Whatever a command says when it fails is printed, and the comparison goes on with what exists.

Baselines, fitted here on the export alone: recency; BG/NBD P(no purchase within the horizon) and BG/NBD +
Gamma-Gamma expected value (the `lifetimes` package, time in days); LightGBM on RFM features at one internal
cutoff (the horizon before --now, or the middle of the history when the horizon does not fit, with the label
window shortened to what fits); historical spend per day; for logs with several products, global popularity
and each customer's own most-bought products (Recall@10 of the products bought in the horizon). Consent is
honoured on both sides: a customer who refused personalisation (as Tessera's output records it) gets popularity
from the baselines too, and a second row compares the customers who allow it.

Beside them, a bound that is not a method: LightGBM on the same RFM features and BG/NBD quantities as of --now,
learning the truth itself (5-fold cross-validated over the customers). A model reading only the purchase history
should not rank the horizon much better than that; a target above it asks for what the export does not hold.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import TESSERA, machine

# This folder holds a script named `training`: keep it off the path so `import training` finds the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

CDNOW_NOW = "1997-10-01"
SIMULATED_AS_OF = "2025-12-31"
SOURCE = "orders"
MAPPING = """version: 1
sources:
  - name: {source}
    type: order_lines
    path: orders.csv
    format: csv
    # One row per order line; an order is a customer's purchases at one moment.
    columns: {{order_id: order_id, customer_ref: customer_id, ordered_at: ordered_at, unit_price: amount{sku_column}}}
    constants: {{quantity: "1", channel: online}}
"""
K = 10


@dataclass(frozen=True)
class Step:
    """One `tessera` command: its exit code, wall time, peak memory and what it printed."""

    command: str
    returncode: int
    seconds: float
    peak_gib: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def said(self, lines: int = 3) -> str:
        """The last lines the command printed: the error when it failed."""
        text = [line for line in self.output.strip().splitlines() if line.strip()]
        return "\n      ".join(text[-lines:])


def cdnow_file() -> Path:
    """CDNOW's full purchase log, as shipped inside the installed `lifetimes` package (never downloaded)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the lifetimes package (a dev dependency) is not installed: run `uv sync`")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"


def read_cdnow(path: Path) -> pd.DataFrame:
    """CDNOW's master file (customer, day, CDs, dollars) as order lines without products."""
    raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "ordered_at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "amount": raw["dollar_value"].astype(float),
        }
    )


def read_orders(path: Path) -> pd.DataFrame:
    """A log in the documented shape (customer_id, ordered_at, amount[, sku]); errors name the row and field."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if missing := sorted({"customer_id", "ordered_at", "amount"} - set(frame.columns)):
        raise SystemExit(
            f"{path}: no column {', '.join(missing)}; expected customer_id,ordered_at,amount[,sku]"
        )
    when = pd.to_datetime(frame["ordered_at"], utc=True, errors="coerce", format="ISO8601")
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    for field, bad in (
        ("customer_id", frame["customer_id"].str.strip() == ""),
        ("ordered_at", when.isna()),
        ("amount", amount.isna() | (amount <= 0)),
    ):
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = frame[field].iloc[row]
            expected = {"customer_id": "a non-empty id", "ordered_at": "an ISO 8601 date or time"}.get(
                field, "a number > 0 (leave returns out)"
            )
            raise SystemExit(
                f"{path}, row {row + 2}, {field}: {value!r} is not {expected} ({int(bad.sum())} rows)"
            )
    orders = pd.DataFrame(
        {"customer_id": frame["customer_id"].str.strip(), "ordered_at": when, "amount": amount}
    )
    if "sku" in frame.columns:
        orders["sku"] = frame["sku"].str.strip().replace("", "unknown")
    return orders


def limit_customers(orders: pd.DataFrame, limit: int | None, seed: int = 0) -> pd.DataFrame:
    """A random subset of `limit` customers (all their rows), for quick runs."""
    customers = orders["customer_id"].unique()
    if limit is None or limit >= len(customers):
        return orders
    keep = np.random.default_rng(seed).choice(customers, size=limit, replace=False)
    return orders[orders["customer_id"].isin(keep)].reset_index(drop=True)


def write_export(history: pd.DataFrame, folder: Path) -> Path:
    """The export as a user would hand it over (orders.csv) and the sources.yaml mapping it; returns the latter."""
    folder.mkdir(parents=True, exist_ok=True)
    export = history.assign(
        order_id=history["customer_id"] + "-" + history["ordered_at"].dt.strftime("%Y%m%d%H%M%S"),
        ordered_at=history["ordered_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    export.to_csv(folder / "orders.csv", index=False)
    has_sku = "sku" in history.columns
    (folder / "sources.yaml").write_text(
        # Orders without products map no sku at all (docs/sources.md).
        MAPPING.format(source=SOURCE, sku_column=", sku: sku" if has_sku else "")
    )
    return folder / "sources.yaml"


def run_step(args: list[str], env: dict[str, str]) -> Step:
    """Run `tessera ARGS` in its own process; never raises on failure."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [*TESSERA, *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)  # reaps the child with its peak memory
        log.seek(0)
        output = log.read()
    seconds, peak = time.perf_counter() - started, usage.ru_maxrss / 1024**2
    returncode = os.waitstatus_to_exitcode(status)
    step = Step("tessera " + " ".join(args[:2]), returncode, seconds, peak, output)
    print(f"  {step.command:<28} exit {step.returncode}  {step.seconds:6.1f} s", flush=True)
    if not step.ok:
        print(f"      {step.said()}", flush=True)
    return step


def run_tessera(
    folder: Path, sources: Path, now: pd.Timestamp, horizon_days: int
) -> tuple[list[Step], dict[str, Path]]:
    """The README's commands on the export; returns every step and the output files that were written."""
    workspace = folder / "workspace"
    env = {**os.environ, "TESSERA_TRAINING_HORIZON_DAYS": str(horizon_days)}
    common = ["--workspace", str(workspace), "--now", now.isoformat()]
    steps = [run_step(["run", "--sources", str(sources), *common], env)]
    outputs = {}
    for model, args in (
        ("churn", ["score", "churn", "--out", str(folder / "churn.csv")]),
        ("cltv", ["score", "cltv", "--out", str(folder / "cltv.csv")]),
        ("next-best-product", ["recommend", "--all", "--k", str(K), "--out", str(folder / "recommend.csv")]),
    ):
        steps.append(run_step([*args, *common], env))
        if not steps[-1].ok and not steps[0].ok:
            # `run` stops at the first model that fails: train the missing one alone, as a user would next.
            steps.append(run_step(["train", model, *common], env))
            if steps[-1].ok:
                steps.append(run_step([*args, *common], env))
        if steps[-1].ok:
            outputs[model] = Path(args[args.index("--out") + 1])
    (folder / "steps.json").write_text(json.dumps([asdict(step) for step in steps], indent=1))
    return steps, outputs


def earlier_run(folder: Path) -> tuple[list[Step], dict[str, Path]]:
    """The steps and outputs a previous run left in `folder` (--rescore)."""
    steps = [Step(**step) for step in json.loads((folder / "steps.json").read_text())]
    files = {"churn": "churn.csv", "cltv": "cltv.csv", "next-best-product": "recommend.csv"}
    return steps, {model: folder / file for model, file in files.items() if (folder / file).exists()}


def by_customer(frame: pd.DataFrame, owners: pd.Series) -> pd.DataFrame:
    """Tessera's output rows keyed by the evaluation's customer id, through the `source:record_id`s on each row."""
    keys = frame.assign(key=frame["source_ids"].fillna("").str.split(";")).explode("key")
    return keys.assign(customer_id=keys["key"].map(owners)).dropna(subset=["customer_id"])


def tessera_scores(path: Path, column: str, owners: pd.Series) -> pd.Series:
    """Per evaluated customer: the column Tessera wrote for the Tessera customer(s) holding their records."""
    frame = by_customer(pd.read_csv(path, dtype={"source_ids": str}), owners)
    return frame.groupby("customer_id")[column].mean()


def rfm(history: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Recency, frequency, monetary features per customer from the orders before `cutoff` (days)."""
    before = history[history["ordered_at"] < cutoff]
    before = before.assign(day=before["ordered_at"].dt.floor("D"))
    grouped = before.groupby("customer_id")
    spend_per_day = before.groupby(["customer_id", "day"])["amount"].sum()
    return pd.DataFrame(
        {
            "recency_days": (cutoff - grouped["ordered_at"].max()).dt.total_seconds() / 86_400,
            "tenure_days": (cutoff - grouped["ordered_at"].min()).dt.total_seconds() / 86_400,
            "purchase_days": grouped["day"].nunique(),
            "lines": grouped.size(),
            "total_spend": grouped["amount"].sum(),
            "mean_day_spend": spend_per_day.groupby(level=0).mean(),
            "max_day_spend": spend_per_day.groupby(level=0).max(),
        }
    )


def lightgbm_rfm(
    history: pd.DataFrame, now: pd.Timestamp, horizon_days: int
) -> tuple[pd.Series, pd.Series, int]:
    """LightGBM on RFM at one internal cutoff: P(no purchase) and spend over the label window; returns the window."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    start = history["ordered_at"].min().floor("D")
    span = (now - start).days
    window = horizon_days if span - horizon_days >= 28 else span // 2
    cutoff = now - pd.Timedelta(days=window)
    train = rfm(history, cutoff)
    after = history[(history["ordered_at"] >= cutoff) & (history["ordered_at"] < now)]
    spend = after.groupby("customer_id")["amount"].sum().reindex(train.index, fill_value=0.0)
    params = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "min_child_samples": 20,
        "random_state": 0,
        "verbose": -1,
    }
    score = rfm(history, now)
    churn = LGBMClassifier(**params).fit(train, (spend == 0).astype(int)).predict_proba(score)[:, 1]
    value = LGBMRegressor(**params).fit(train, spend).predict(score)
    # A shorter label window than the horizon ranks the same way; rescale the value so totals stay comparable.
    return pd.Series(churn, score.index), pd.Series(value * horizon_days / window, score.index), window


def probabilistic(history: pd.DataFrame, now: pd.Timestamp, horizon_days: int) -> tuple[pd.Series, pd.Series]:
    """BG/NBD P(no purchase within the horizon) and BG/NBD + Gamma-Gamma expected spend, fitted with lifetimes."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    days = history.assign(day=history["ordered_at"].dt.tz_localize(None).dt.floor("D"))
    summary = summary_data_from_transaction_data(
        days, "customer_id", "day", monetary_value_col="amount", freq="D",
        observation_period_end=(now - pd.Timedelta(days=1)).tz_localize(None).floor("D"),
    )  # fmt: skip
    bgf = _converged(BetaGeoFitter, summary["frequency"], summary["recency"], summary["T"])
    x, t_x, big_t = summary["frequency"], summary["recency"], summary["T"]
    alive = bgf.conditional_probability_alive(x, t_x, big_t)
    r, alpha = bgf.params_["r"], bgf.params_["alpha"]
    # Alive customers buy at a rate with posterior Gamma(r + x, alpha + T): P(no purchase in t) = E[exp(-rate t)].
    none = (1 - alive) + alive * ((alpha + big_t) / (alpha + big_t + horizon_days)) ** (r + x)
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(horizon_days, x, t_x, big_t)
    repeat = (summary["frequency"] > 0) & (summary["monetary_value"] > 0)  # Gamma-Gamma needs positive spend
    ggf = _converged(GammaGammaFitter, x[repeat], summary["monetary_value"][repeat])
    mean_spend = ggf.conditional_expected_average_profit(x, summary["monetary_value"])
    return none.rename("bgnbd"), (purchases * mean_spend).rename("bgnbd_gg")


def _converged(fitter: type, *columns: pd.Series) -> object:
    """A lifetimes fitter fitted without a penalizer, or, when that does not converge, with lifetimes' own advice
    ("try adding a larger penalizer"): 0.001, then 0.01; said on stderr."""
    from lifetimes.utils import ConvergenceError

    for penalizer in (0.0, 0.001, 0.01):
        try:
            fitted = fitter(penalizer_coef=penalizer).fit(*columns)
        except ConvergenceError:
            continue
        if penalizer:
            print(
                f"{fitter.__name__}: no convergence unpenalised; fitted with penalizer {penalizer}",
                file=sys.stderr,
            )
        return fitted
    raise RuntimeError(f"{fitter.__name__} did not converge, even with a penalizer of 0.01")


# Small trees on well-populated leaves: the settings that bound best on CDNOW and the simulator (docs/benchmarks.md).
HINDSIGHT_GRID = (
    {"num_leaves": 3, "min_child_samples": 300},
    {"num_leaves": 7, "min_child_samples": 200},
    {"num_leaves": 7, "min_child_samples": 500},
)


def hindsight(features: pd.DataFrame, churned: pd.Series, spend: pd.Series) -> tuple[float, float]:
    """A bound, not a method: the best ROC AUC and normalised Gini LightGBM reaches on `features` at --now when it
    learns the truth itself (5-fold cross-validated over the customers, the best of `HINDSIGHT_GRID`).

    No model that reads only these features as of --now should rank the horizon much better: a target above this
    asks for information the export does not hold (or for features beyond purchase history).
    """
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    from training.evaluate import normalized_gini

    common = {"n_estimators": 200, "learning_rate": 0.03, "random_state": 0, "verbose": -1}
    aucs, ginis = [], []
    for params in HINDSIGHT_GRID:
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        p = cross_val_predict(
            LGBMClassifier(**common, **params), features, churned, cv=folds, method="predict_proba"
        )[:, 1]
        aucs.append(roc_auc_score(churned, p))
        value = LGBMRegressor(objective="tweedie", **common, **params)
        v = cross_val_predict(value, features, spend, cv=KFold(5, shuffle=True, random_state=0))
        ginis.append(normalized_gini(spend.to_numpy(), v))
    return float(max(aucs)), float(max(ginis))


def recall_at_k(recommended: pd.DataFrame, future: pd.DataFrame) -> float:
    """Mean over customers who bought in the horizon of (distinct future products in their top K) / min(K, bought)."""
    bought = future.groupby("customer_id")["sku"].agg(set)
    top = recommended.groupby("customer_id")["sku"].agg(list).reindex(bought.index)
    hits = [
        len(bought[c] & set(top[c] if isinstance(top[c], list) else [])) / min(K, len(bought[c]))
        for c in bought.index
    ]
    return float(np.mean(hits)) if hits else float("nan")


def personalisation_allowed(recommended: pd.DataFrame | None, customers: pd.Index) -> pd.Series:
    """Per evaluated customer: may their own history shape what they are shown? Consent is an input fact, read
    here from Tessera's output (`consent_personalisation` on every row of theirs); without it, everyone may."""
    if recommended is None or "consent_personalisation" not in recommended.columns:
        return pd.Series(True, index=customers)
    consent = recommended.groupby("customer_id")["consent_personalisation"].all()
    return consent.reindex(customers, fill_value=True).astype(bool)


def recommendation_baselines(
    history: pd.DataFrame, customers: pd.Index, allowed: pd.Series
) -> dict[str, pd.DataFrame]:
    """Top-K by global popularity, and each customer's own most-bought products topped up by popularity; a
    customer who refused personalisation gets popularity alone, as a served baseline would give them."""
    popular = history.groupby("sku").size().sort_values(ascending=False).index[:K].tolist()
    global_top = pd.DataFrame(
        {"customer_id": np.repeat(customers, len(popular)), "sku": popular * len(customers)}
    )
    own = history[history["customer_id"].map(allowed).fillna(True).astype(bool)]
    own = own.groupby(["customer_id", "sku"]).size().rename("n").reset_index()
    own = own.sort_values(["customer_id", "n"], ascending=[True, False]).groupby("customer_id").head(K)
    topped = pd.concat([own[["customer_id", "sku"]], global_top]).drop_duplicates(["customer_id", "sku"])
    return {"popularity": global_top, "own most-bought": topped.groupby("customer_id").head(K)}


def evaluate(
    history: pd.DataFrame,
    future: pd.DataFrame,
    now: pd.Timestamp,
    horizon_days: int,
    outputs: dict[str, Path],
    owners: pd.Series,
) -> list[tuple[str, str, float | None, dict[str, float]]]:
    """Per model: (model, metric, Tessera's figure or None, each baseline's figure)."""
    from sklearn.metrics import roc_auc_score

    from training.evaluate import normalized_gini

    customers = pd.Index(sorted(history["customer_id"].unique()), name="customer_id")
    spend = future.groupby("customer_id")["amount"].sum().reindex(customers, fill_value=0.0)
    churned = (spend == 0).astype(int)
    none, value = probabilistic(history, now, horizon_days)
    lgb_churn, lgb_value, window = lightgbm_rfm(history, now, horizon_days)
    features = rfm(history, now).reindex(customers)
    lgb = f"LightGBM RFM ({window} d label)"
    churn_scores = {"recency": features["recency_days"], "BG/NBD P(none)": none, lgb: lgb_churn}
    value_scores = {
        "BG/NBD + GG": value,
        lgb: lgb_value,
        "historical spend/day": features["total_spend"] / features["tenure_days"].clip(lower=1),
    }
    tessera_churn = (
        tessera_scores(outputs["churn"], "churn_probability", owners) if "churn" in outputs else None
    )
    tessera_value = tessera_scores(outputs["cltv"], "cltv", owners) if "cltv" in outputs else None

    def auc(score: pd.Series) -> float:
        return float(roc_auc_score(churned, score.reindex(customers).fillna(score.median())))

    def gini(score: pd.Series) -> float:
        return normalized_gini(spend.to_numpy(), score.reindex(customers).fillna(score.median()).to_numpy())

    def mean(score: pd.Series) -> float:
        return float(score.reindex(customers).mean())

    bound = features.join(pd.DataFrame({"bgnbd": none, "bgnbd_gg": value}))
    bound_auc, bound_gini = hindsight(bound, churned, spend)
    told = "LightGBM on RFM + BG/NBD learning the truth (5-fold CV)"

    probabilities = {k: v for k, v in churn_scores.items() if k != "recency"}
    rows = [
        ("churn", "ROC AUC", auc(tessera_churn) if tessera_churn is not None else None,
         {k: auc(v) for k, v in churn_scores.items()}),
        ("churn", "ROC AUC in hindsight (a bound, not a method)", None, {told: bound_auc}),
        ("churn", f"mean P(churn) (observed {churned.mean():.3f})",
         mean(tessera_churn) if tessera_churn is not None else None, {k: mean(v) for k, v in probabilities.items()}),
        ("cltv", "normalised Gini", gini(tessera_value) if tessera_value is not None else None,
         {k: gini(v) for k, v in value_scores.items()}),
        ("cltv", "normalised Gini in hindsight (a bound, not a method)", None, {told: bound_gini}),
        ("cltv", f"total predicted / true ({spend.sum():,.0f})",
         float(tessera_value.reindex(customers).sum() / spend.sum()) if tessera_value is not None else None,
         {k: float(v.reindex(customers).sum() / spend.sum()) for k, v in value_scores.items()
          if not k.startswith("historical")}),
    ]  # fmt: skip
    if "sku" in history.columns and history["sku"].nunique() > 1:
        future_lines = future[future["customer_id"].isin(customers)]
        ours, recommended = None, None
        if "next-best-product" in outputs:
            recommended = by_customer(
                pd.read_csv(outputs["next-best-product"], dtype={"source_ids": str, "sku": str}), owners
            )
            ours = recall_at_k(recommended, future_lines)
        allowed = personalisation_allowed(recommended, customers)
        baselines = recommendation_baselines(history, customers, allowed)
        rows.append(
            (
                "next-best-product",
                f"Recall@{K}",
                ours,
                {k: recall_at_k(v, future_lines) for k, v in baselines.items()},
            )
        )
        if not allowed.all():
            # The customers both may personalise for: the comparison that consent leaves open.
            mine = future_lines[future_lines["customer_id"].isin(allowed.index[allowed])]
            rows.append(
                (
                    "next-best-product",
                    f"Recall@{K}, personalisation allowed ({mine['customer_id'].nunique():,} of "
                    f"{future_lines['customer_id'].nunique():,} buyers)",
                    None if recommended is None else recall_at_k(recommended, mine),
                    {k: recall_at_k(v, mine) for k, v in baselines.items()},
                )
            )
    return rows


def print_table(rows: list[tuple[str, str, float | None, dict[str, float]]]) -> None:
    """Each model's figure beside every baseline's, then how far it beats (or trails) the best one."""
    print("\n| model | metric | Tessera | baselines | best baseline | Tessera − best |")
    print("|---|---|---|---|---|---|")
    verdicts = []
    for model, metric, ours, baselines in rows:
        shown = "; ".join(f"{k} {v:.3f}" for k, v in baselines.items())
        ranked = metric in ("ROC AUC", "normalised Gini") or metric.startswith("Recall")
        best_name, best = max(baselines.items(), key=lambda kv: kv[1]) if ranked else ("", float("nan"))
        mine = "—" if ours is None else f"{ours:.3f}"
        margin = "" if ours is None or not ranked else f"{ours - best:+.3f}"
        print(
            f"| {model} | {metric} | {mine} | {shown} | {best_name + f' {best:.3f}' if ranked else ''} | {margin} |"
        )
        if ranked:
            verdicts.append(
                f"{model}: no Tessera figure (see the commands above)" if ours is None
                else f"{model}: {'beats' if ours > best else 'trails'} best baseline ({best_name}) by {abs(ours - best):.3f}"
            )  # fmt: skip
    print()
    print("\n".join(verdicts))


@dataclass(frozen=True)
class Truth:
    """What the script scores against: the export's identified lines, the horizon's, and who owns which record."""

    history: pd.DataFrame  # customer_id, ordered_at, amount[, sku], before --now
    future: pd.DataFrame  # the same columns, within the horizon, for customers of the history
    owners: pd.Series  # `source:record_id` -> customer_id, to read Tessera's outputs


def prepare_log(
    orders: pd.DataFrame, now: pd.Timestamp, horizon_days: int, folder: Path
) -> tuple[Path, Truth]:
    """Split a log at `now`, write the history as the export Tessera gets; returns its sources.yaml and the truth."""
    history = orders[orders["ordered_at"] < now]
    future = orders[
        (orders["ordered_at"] >= now) & (orders["ordered_at"] < now + pd.Timedelta(days=horizon_days))
    ]
    customers = history["customer_id"].drop_duplicates()
    owners = pd.Series(customers.to_numpy(), index=f"{SOURCE}:" + customers)
    truth = Truth(history, future[future["customer_id"].isin(customers)], owners)
    return write_export(history, folder / "export"), truth


def simulated_truth(sample: Path, workspace: Path, now: pd.Timestamp, horizon_days: int) -> Truth:
    """The simulated export's sale lines as read by ingestion, owned by the true person; the truth's future sales."""
    lines = pd.concat(
        pd.read_parquet(p)
        for p in sorted((workspace / "data" / "canonical" / "order_lines").glob("*.parquet"))
    )
    from features.identity.evaluate import read_truth

    identity = read_truth(sample / "truth" / "identity.csv")
    owners = pd.Series(
        identity["person_id"].to_numpy(), index=identity["source"] + ":" + identity["record_id"]
    )
    sales = lines[lines["line_type"] == "sale"]
    history = pd.DataFrame(
        {
            "customer_id": (sales["source"] + ":" + sales["record_id"]).map(owners),
            "ordered_at": sales["ordered_at"],
            "amount": sales["quantity"] * sales["unit_price"],
            "sku": sales["sku"].astype(str),
        }
    ).dropna(subset=["customer_id"])  # anonymous lines belong to nobody the models could score
    print(
        f"  {len(history):,} of {len(sales):,} sale lines identified ({1 - len(history) / len(sales):.0%} anonymous)"
    )
    future = pd.read_parquet(sample / "truth" / "future_orders.parquet")
    future = future[
        (future["line_type"] == "sale")
        & (future["ordered_at"] >= now)
        & (future["ordered_at"] < now + pd.Timedelta(days=horizon_days))
        & future["person_id"].isin(history["customer_id"])
    ]
    future = pd.DataFrame(
        {
            "customer_id": future["person_id"],
            "ordered_at": future["ordered_at"],
            "amount": future["quantity"] * future["unit_price"],
            "sku": future["sku"].astype(str),
        }
    )
    return Truth(history, future, owners)


def main() -> None:
    from simulator.config import PROFILES

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--orders", type=Path, default=None, help="another log: customer_id,ordered_at,amount[,sku]"
    )
    parser.add_argument(
        "--shape",
        choices=PROFILES,
        default=None,
        help="a simulated retailer of this simulator profile instead",
    )
    parser.add_argument("--customers", type=int, default=5000, help="--shape: how many people")
    parser.add_argument("--seed", type=int, default=42, help="--shape: the simulation's seed")
    parser.add_argument("--now", default=None, help=f"the export's end (default: {CDNOW_NOW} for CDNOW)")
    parser.add_argument("--horizon-days", type=int, default=90, help="days after --now the truth covers")
    parser.add_argument(
        "--customers-limit", type=int, default=None, help="a random subset of the log's customers"
    )
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="with --keep: score the outputs of an earlier run in that folder again",
    )
    args = parser.parse_args()
    if args.rescore and not (args.keep and (args.keep / "steps.json").exists()):
        parser.error("--rescore needs --keep WORKDIR holding an earlier run (its steps.json)")
    if not args.rescore and args.keep and (args.keep / "workspace").exists():
        parser.error(
            f"{args.keep} holds an earlier run, whose champions would mix in: --rescore it or pick another folder"
        )
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tessera-real-data-"))
    horizon = args.horizon_days
    started = time.perf_counter()

    if args.shape:
        sample = folder / "sample"
        size = ["--customers", str(args.customers), "--seed", str(args.seed), "--as-of", SIMULATED_AS_OF]
        if not args.rescore:
            simulate = ["simulate", "--profile", args.shape, *size, "--out", str(sample)]
            simulated = run_step(simulate, dict(os.environ))
            if not simulated.ok:
                raise SystemExit(simulated.output)
        now = pd.Timestamp(SIMULATED_AS_OF, tz=UTC) + pd.Timedelta(days=1)
        sources, name = (
            sample / "sources.yaml",
            f"simulated retailer ({args.shape}, {args.customers:,} people)",
        )
    else:
        orders = read_orders(args.orders) if args.orders else read_cdnow(cdnow_file())
        orders = limit_customers(orders, args.customers_limit)
        end = orders["ordered_at"].max().floor("D") + pd.Timedelta(days=1)
        now = pd.Timestamp(
            args.now or (CDNOW_NOW if args.orders is None else end - pd.Timedelta(days=horizon))
        )
        now = now.tz_localize(UTC) if now.tzinfo is None else now.tz_convert(UTC)
        sources, truth = prepare_log(orders, now, horizon, folder)
        name = args.orders.name if args.orders else "CDNOW_master.txt"
        if now + pd.Timedelta(days=horizon) > end:
            print(f"warning: the log ends {end:%Y-%m-%d}, before the horizon: the truth is partial")

    if args.rescore:
        steps, outputs = earlier_run(folder)
        wall = sum(step.seconds for step in steps)
    else:
        steps, outputs = run_tessera(folder, sources, now, horizon)
        wall = time.perf_counter() - started
    if args.shape:
        if not (folder / "workspace" / "data" / "canonical" / "order_lines").exists():
            raise SystemExit("Tessera did not ingest the simulated exports: nothing to score (see above)")
        truth = simulated_truth(sample, folder / "workspace", now, horizon)
    print(
        f"\n{name}: {truth.history['customer_id'].nunique():,} customers, {len(truth.history):,} lines before "
        f"{now:%Y-%m-%d}; truth {now:%Y-%m-%d} + {horizon} days ({len(truth.future):,} lines)"
    )
    print_table(evaluate(truth.history, truth.future, now, horizon, outputs, truth.owners))
    failed = [s for s in steps if not s.ok]
    print(f"\n{machine()}\nTessera's commands: {wall:.0f} s wall, peak {max(s.peak_gib for s in steps):.2f} GiB; "
          f"{len(failed)} of {len(steps)} failed")  # fmt: skip
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"workspace kept in {folder}")


if __name__ == "__main__":
    main()
