"""Metrics and plots shared by the three models: classification, value ranking and top-k recommendation.

Pure functions of arrays and frames; the figures are matplotlib objects that `training.tracking` logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score  # noqa: E402


def classification_metrics(y_true: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision of any score; Brier and log loss too when the score is a probability."""
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    metrics = {
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
    }
    if s.min() >= 0 and s.max() <= 1:
        metrics["brier"] = float(brier_score_loss(y, s))
        metrics["log_loss"] = float(log_loss(y, np.clip(s, 1e-6, 1 - 1e-6)))
    return metrics


def gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `actual` ordered by `predicted` (descending): how much value the ranking puts first."""
    a = np.asarray(actual, dtype=float)
    order = np.lexsort((np.arange(len(a)), -np.asarray(predicted, dtype=float)))
    cumulative = np.cumsum(a[order]) / a.sum()
    n = len(a)
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the prediction over the Gini of the perfect ranking: 1 is perfect, 0 is random."""
    best = gini(actual, actual)
    return gini(actual, predicted) / best if best > 0 else 0.0


def value_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Normalised Gini (ranking), MAE and RMSE, and total predicted over total actual."""
    a, p = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    return {
        "normalized_gini": normalized_gini(a, p),
        "mae": float(np.mean(np.abs(a - p))),
        "rmse": float(np.sqrt(np.mean((a - p) ** 2))),
        "total_ratio": float(p.sum() / a.sum()) if a.sum() > 0 else float("nan"),
    }


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of customers whose actual value falls inside their interval."""
    a = np.asarray(actual, dtype=float)
    return float(np.mean((a >= np.asarray(lower)) & (a <= np.asarray(upper))))


def ranking_metrics(
    recommended: Mapping[str, Sequence[str]], truth: pd.DataFrame, k: int
) -> dict[str, float]:
    """Recall@k, precision@k, NDCG@k and hit rate, averaged over customers with at least one true item.

    Recall@k divides the hits by min(k, relevant items), so a customer who buys 40 products can still score 1.
    Not `implicit.evaluation.ranking_metrics_at_k`: it scores a fitted implicit model (it calls `recommend` on
    a user-item matrix), where these are any method's lists (baselines, the blend); its NDCG is this one
    (checked equal on random lists), but its "precision" is hits pooled over all customers divided by the
    pooled min(k, relevant items), neither precision@k (hits / k) nor the per-customer mean recall here, and
    it has no hit rate.
    """
    relevant = truth.groupby("customer_id", observed=True)["sku"].agg(set)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recall, precision, ndcg, hit = [], [], [], []
    for customer, items in relevant.items():
        shown = list(recommended.get(customer, ()))[:k]
        gains = np.array([1.0 if sku in items else 0.0 for sku in shown])
        hits = gains.sum()
        ideal = discounts[: min(len(items), k)].sum()
        recall.append(hits / min(len(items), k))
        precision.append(hits / k)
        ndcg.append(float(gains @ discounts[: len(gains)]) / ideal if len(gains) else 0.0)
        hit.append(float(hits > 0))
    if not recall:
        return {
            f"recall_at_{k}": 0.0,
            f"precision_at_{k}": 0.0,
            f"ndcg_at_{k}": 0.0,
            f"hit_rate_at_{k}": 0.0,
            "customers": 0.0,
        }
    return {
        f"recall_at_{k}": float(np.mean(recall)),
        f"precision_at_{k}": float(np.mean(precision)),
        f"ndcg_at_{k}": float(np.mean(ndcg)),
        f"hit_rate_at_{k}": float(np.mean(hit)),
        "customers": float(len(recall)),
    }


def decile_table(actual: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Customers in ten equal groups by score (1 = highest): mean score, mean actual, share of the total actual."""
    frame = pd.DataFrame({"actual": np.asarray(actual, dtype=float), "score": np.asarray(score, dtype=float)})
    ranks = frame["score"].rank(method="first", ascending=False)
    frame["decile"] = np.ceil(ranks * 10 / len(frame)).clip(1, 10).astype(int)
    table = frame.groupby("decile").agg(
        customers=("actual", "size"), mean_score=("score", "mean"), mean_actual=("actual", "mean")
    )
    total = frame["actual"].sum()
    table["share_of_actual"] = frame.groupby("decile")["actual"].sum() / total if total else 0.0
    table["lift"] = table["mean_actual"] / frame["actual"].mean() if frame["actual"].mean() else 0.0
    return table.reset_index()


def calibration_figure(y_true: np.ndarray, probabilities: Mapping[str, np.ndarray], bins: int = 10) -> Figure:
    """Reliability diagram: mean predicted probability against the observed rate, per probability bin."""
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    y = np.asarray(y_true, dtype=float)
    for name, p in probabilities.items():
        frame = pd.DataFrame({"p": np.asarray(p, dtype=float), "y": y})
        frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
        points = frame.groupby("bin").mean()
        axis.plot(points["p"], points["y"], marker="o", label=name)
    axis.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration")
    axis.legend()
    figure.tight_layout()
    return figure


def lift_figure(actual: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """Cumulative share of the actual outcome captured against share of customers targeted, per score."""
    figure, axis = plt.subplots(figsize=(5, 5))
    a = np.asarray(actual, dtype=float)
    x = np.arange(1, len(a) + 1) / len(a)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axis.plot(x, np.cumsum(np.sort(a)[::-1]) / a.sum(), color="black", linewidth=0.8, label="perfect")
    for name, s in scores.items():
        order = np.argsort(-np.asarray(s, dtype=float), kind="stable")
        axis.plot(x, np.cumsum(a[order]) / a.sum(), label=name)
    axis.set(
        xlabel="share of customers (highest score first)",
        ylabel="share of outcome captured",
        title="Cumulative gains",
    )
    axis.legend()
    figure.tight_layout()
    return figure


def decile_figure(actual: np.ndarray, scores: Mapping[str, np.ndarray]) -> Figure:
    """Mean actual outcome per score decile (1 = highest score), one bar group per score."""
    figure, axis = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(len(scores), 1)
    for i, (name, s) in enumerate(scores.items()):
        table = decile_table(actual, s)
        axis.bar(table["decile"] + i * width - 0.4 + width / 2, table["mean_actual"], width=width, label=name)
    axis.set(xlabel="decile (1 = highest score)", ylabel="mean actual", title="Deciles", xticks=range(1, 11))
    axis.legend()
    figure.tight_layout()
    return figure


def close(figures: Mapping[str, Figure]) -> None:
    """Free the figures once logged."""
    for figure in figures.values():
        plt.close(figure)


def comparison_figure(table: pd.DataFrame, metrics: Sequence[str]) -> Figure:
    """Bars of the given metrics (columns of `table`) for each method (its index): model against baselines."""
    figure, axis = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(metrics), 1)
    x = np.arange(len(table))
    for i, metric in enumerate(metrics):
        axis.bar(
            x + i * width - 0.4 + width / 2, table[metric].to_numpy(dtype=float), width=width, label=metric
        )
    axis.set_xticks(x, table.index.tolist(), rotation=20)
    axis.set(title="Model against baselines")
    axis.legend()
    figure.tight_layout()
    return figure
