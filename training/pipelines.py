"""The five steps every model goes through, written once: load point-in-time data → split by time → fit →
evaluate against baselines → log, register and gate. Each model is a recipe (`training.recipes`) that says
how to do the steps for it; `train_model` runs them (`tessera.pipeline.train_all` runs it for every model).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from features.profile.read import load_anonymous_purchases, load_catalogue, load_events, load_order_lines
from tessera.core.settings import Workspace
from tessera.core.timeutil import as_utc
from training import tracking
from training.errors import ModelSkipped
from training.evaluate import close
from training.labels import Cutoffs, order_events, plan_cutoffs, sales
from training.probabilistic import ProbabilisticCLV
from training.settings import TrainingSettings

if TYPE_CHECKING:  # Feast is heavy: imported only when features are read
    from feast import FeatureStore

    from features.store.settings import FeatureStoreSettings

log = logging.getLogger(__name__)


class TrainingContext:
    """One training moment: workspace, now, settings, the time split, and the profile data read once.

    Everything is read and planned on first use, so a model whose data cannot train raises ModelSkipped
    from its own steps and the others go on.
    """

    def __init__(
        self,
        workspace: Workspace,
        now: datetime,
        settings: TrainingSettings,
        store_settings: FeatureStoreSettings,
    ) -> None:
        self.workspace = workspace
        self.now = pd.Timestamp(as_utc(now))
        self.settings = settings
        self.store_settings = store_settings

    @cached_property
    def store(self) -> FeatureStore:
        """The workspace's feature store (opened on first use: Feast is heavy)."""
        from features.store import open_store

        return open_store(self.workspace, self.store_settings)

    @cached_property
    def without_profiling_consent(self) -> set[str]:
        """Customers left out of every training and evaluation set: no consent to profiling (when configured)."""
        path = self.workspace.profile / "customers.parquet"
        if not self.settings.exclude_without_profiling_consent or not path.exists():
            return set()
        if "consent_profiling" not in pq.read_schema(path).names:
            return set()
        golden = pd.read_parquet(path, columns=["customer_id", "consent_profiling"])
        return set(golden.loc[golden["consent_profiling"].eq(False), "customer_id"].astype(str))

    def _consenting(self, rows: pd.DataFrame) -> pd.DataFrame:
        excluded = self.without_profiling_consent
        return (
            rows[~rows["customer_id"].astype(str).isin(excluded)].reset_index(drop=True) if excluded else rows
        )

    @cached_property
    def order_lines(self) -> pd.DataFrame:
        """Identified customers' order lines up to now (of customers who consented to profiling)."""
        return self._consenting(load_order_lines(self.workspace, self.now))

    @cached_property
    def orders(self) -> pd.DataFrame:
        """Orders and returns per customer (labels and the probabilistic baseline read these)."""
        return order_events(self.order_lines)

    @cached_property
    def cutoffs(self) -> Cutoffs:
        """The time split, planned inside the sales present; ModelSkipped (every model) when none fits."""
        ordered_at = sales(self.orders)["ordered_at"]
        if ordered_at.empty:
            raise ModelSkipped(f"no identified customer bought anything up to {self.now:%Y-%m-%d}")
        s = self.settings
        return plan_cutoffs(
            ordered_at.min(),
            ordered_at.max(),
            self.now,
            horizon_days=s.horizon_days,
            training_cutoffs=s.training_cutoffs,
            spacing_days=s.cutoff_spacing_days,
            min_history_days=s.min_history_days,
            min_horizon_days=s.min_horizon_days,
        )

    @cached_property
    def events(self) -> pd.DataFrame:
        """Purchases, add-to-carts and views up to now (the recommender's signals), as `order_lines` filtered."""
        return self._consenting(load_events(self.workspace, self.now))

    @cached_property
    def anonymous_purchases(self) -> pd.DataFrame:
        """Purchases of no customer, one buyer per order: for the recommender's popularity and co-purchase only."""
        return load_anonymous_purchases(self.workspace, self.now)

    @cached_property
    def catalogue(self) -> pd.DataFrame | None:
        """The product catalogue (sku, category, available), when the retailer sent one."""
        return load_catalogue(self.workspace)

    @cached_property
    def probabilistic(self) -> pd.DataFrame:
        """BG/NBD + Gamma-Gamma fitted on history up to the validation cutoff, predicted over its horizon."""
        history = sales(self.orders)
        model = ProbabilisticCLV(unit_days=7.0).fit(history, self.cutoffs.validation)
        predicted = model.predict(history, self.cutoffs.validation, self.cutoffs.horizon_days)
        predicted.attrs["params"] = {**model.bgnbd_.params_, **model.gamma_gamma_.params_}
        return predicted


@dataclass
class Evaluation:
    """What step 4 produces: the model's metrics, each baseline's, plots and tables."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Logged:
    """What step 5 needs from a recipe besides the evaluation: params, inputs, datasets and an example."""

    params: dict[str, Any]
    inputs: dict[str, Any]  # feature service and its features, or the event signals
    datasets: dict[str, tuple[pd.DataFrame, str | None]]  # context → (frame, target column)
    input_example: pd.DataFrame
    params_example: dict[str, Any] | None = None


class Recipe(Protocol):
    """How one model does the five steps; see `training.recipes`."""

    name: str
    primary_metric: str

    def load(self, ctx: TrainingContext) -> Any:
        """Steps 1-2: the point-in-time training and validation data, split at the context's cutoffs."""
        ...

    def candidates(self, ctx: TrainingContext, data: Any) -> dict[str, Any]:
        """Step 3: every candidate (the learned model and each baseline), fitted on the training cutoffs only.

        Simplest first (a tie goes to the simpler); each is an estimator with the served champion's interface.
        """
        ...

    def refit(self, ctx: TrainingContext, name: str, data: Any) -> Any:
        """The chosen candidate fitted again on everything up to the end of the validation window."""
        ...

    def evaluate(self, ctx: TrainingContext, estimator: Any, data: Any) -> Evaluation:
        """Step 4: metrics of the estimator and of every baseline on the validation window, plots, tables."""
        ...

    def score(self, ctx: TrainingContext, estimator: Any, metadata: dict[str, Any], data: Any) -> float:
        """The primary metric of any estimator (the champion) on this run's validation window: the gate's input."""
        ...

    def logged(self, ctx: TrainingContext, estimator: Any, data: Any) -> Logged:
        """What step 5 logs besides the evaluation: parameters, inputs, datasets, an input example."""
        ...


def select(scores: dict[str, float]) -> str:
    """The candidate with the best score; on a tie the one listed first (the simpler)."""
    best = max(scores.values())
    return next(name for name, score in scores.items() if score >= best)


def _champion_score(
    recipe: Recipe, ctx: TrainingContext, data: Any, candidates: dict[str, Any], scores: dict[str, float]
) -> float | None:
    """The current champion's score on this run's validation window, for the gate; None without a champion.

    A champion refit on labels inside this window would be scored on what it learned from: when this run
    has a candidate built exactly like it, that candidate (fitted on this run's training cutoffs only)
    stands in for it; otherwise the champion itself is scored.
    """
    champion = tracking.load_champion(ctx.workspace, recipe.name)
    if champion is None:
        return None
    estimator, metadata = champion
    trained_until = metadata.get("trained_until")
    seen = trained_until is not None and pd.Timestamp(trained_until) > ctx.cutoffs.validation
    same = candidates.get(metadata.get("candidate", ""))
    if seen and same is not None and configuration(same) == configuration(estimator):
        return scores[metadata["candidate"]]
    return recipe.score(ctx, estimator, metadata, data)


def configuration(estimator: Any) -> tuple[str, str]:
    """What an estimator was built as: its class and constructor parameters (`__init__` stores only those).

    A wrapper that rescales a served estimator to a longer horizon is looked through.
    """
    while type(estimator).__name__.startswith("Rescaled"):
        estimator = estimator.estimator
    params = {k: v for k, v in vars(estimator).items() if not k.startswith("_") and not k.endswith("_")}
    return type(estimator).__name__, repr(sorted(params.items()))


def train_model(recipe: Recipe, ctx: TrainingContext) -> dict[str, Any]:
    """Run the five steps for one model; returns every candidate's score, the winner's metrics and the gate's decision."""
    started = time.perf_counter()
    data = recipe.load(ctx)  # steps 1-2: point-in-time data, split at the cutoffs
    # Step 3: every candidate learns from the training cutoffs; the best on the validation window wins.
    candidates = recipe.candidates(ctx, data)
    scores = {name: recipe.score(ctx, candidate, {}, data) for name, candidate in candidates.items()}
    winner = select(scores)
    others = [score for name, score in scores.items() if name != winner]
    margin = scores[winner] - max(others) if others else None
    evaluation = recipe.evaluate(ctx, candidates[winner], data)  # step 4, on the winner as selected
    challenger_score = scores[winner]
    # The served model learns from the latest labelled window too.
    estimator = recipe.refit(ctx, winner, data)
    champion_score = _champion_score(recipe, ctx, data, candidates, scores)
    logged = recipe.logged(ctx, estimator, data)
    window = ctx.cutoffs.describe()
    label_days = ctx.cutoffs.horizon_days
    target_days = ctx.cutoffs.target_horizon_days
    log.info("%s candidates on the validation window %s: %s wins", recipe.name, scores, winner)
    with tracking.training_run(
        ctx.workspace, recipe.name, f"{recipe.name} {ctx.now:%Y-%m-%d %H:%M}"
    ) as run:  # step 5
        run.log_params({**logged.params, **window, "now": ctx.now.isoformat(), "seed": ctx.settings.seed})
        run.log_params({"candidate": winner, "candidates": list(scores)})
        run.log_dict(logged.inputs, "inputs.json")
        run.set_tags(
            {
                "model": recipe.name,
                "candidate": winner,
                **{k: v for k, v in logged.inputs.items() if isinstance(v, str)},
            }
        )
        for context, (frame, target) in logged.datasets.items():
            run.log_dataset(frame, f"{recipe.name}-{context}", context, target)
        run.log_metrics(evaluation.metrics)
        run.log_metrics(scores, prefix=f"candidate_{recipe.primary_metric}_")
        if margin is not None:
            run.log_metrics({"candidate_margin": margin})
        for baseline, metrics in evaluation.baselines.items():
            run.log_metrics(metrics, prefix=f"baseline_{baseline}_")
        run.log_figures(evaluation.figures)
        run.log_tables(evaluation.tables)
        end = ctx.cutoffs.validation + ctx.cutoffs.horizon
        metadata = {
            **{k: v for k, v in logged.inputs.items() if isinstance(v, str | int | float | list)},
            "model": recipe.name,
            "candidate": winner,
            "candidates": scores,
            "margin": margin,
            # What the served predictions mean: the horizon asked for; labels may have covered a shorter one.
            "horizon_days": target_days,
            "label_horizon_days": label_days,
            "horizon_rescaled": target_days != label_days,
            "trained_until": end.isoformat(),
            "validation_window": [ctx.cutoffs.validation.isoformat(), end.isoformat()],
            "primary_metric": recipe.primary_metric,
            recipe.primary_metric: challenger_score,
        }
        version = run.log_model(estimator, recipe.name, logged.input_example, metadata, logged.params_example)
        if champion_score is not None:
            run.log_metrics({f"champion_{recipe.primary_metric}": champion_score})
        decision = tracking.gate_decision(  # applied by `train_all` with the other models' decisions
            ctx.workspace,
            version,
            recipe.primary_metric,
            challenger_score,
            champion_score,
            ctx.settings.gate_tolerance,
        )
    close(evaluation.figures)
    return {
        "version": version.version,
        "run_id": version.run_id,
        "candidate": winner,
        "candidates": scores,
        "margin": margin,
        "metrics": evaluation.metrics,
        "baselines": evaluation.baselines,
        "gate": decision,
        "seconds": round(time.perf_counter() - started, 1),
    }
