"""The three models as recipes for `training.pipelines.train_model`: what each step means for each model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from training.baselines import baseline_params, signal_params, top_lists
from training.churn import ChurnModel
from training.cltv import CLTVModel
from training.datasets import LabelledFrames, labelled_frames, point_in_time_features, require_products
from training.errors import ModelSkipped
from training.evaluate import (
    calibration_figure,
    classification_metrics,
    comparison_figure,
    decile_figure,
    decile_table,
    interval_coverage,
    lift_figure,
    ranking_metrics,
    value_metrics,
)
from training.labels import days_since_last_sale, sales
from training.pipelines import Evaluation, Logged, TrainingContext
from training.probabilistic import RFM_FEATURES
from training.recommend import NextBestProduct
from training.settings import TrainingSettings
from training.textbook import BGNBDChurn, BGNBDValue, HistoricalAverage, RecencyChurn, rescaled
from training.tuning import SearchSpace, tune, tuning_window, validation_sample

LABELS = ("churned", "value")
# The second LightGBM configuration of each model: small trees on well-populated leaves, chosen when it
# validates better (churn `model_regularised`, CLTV `model_shallow`).
REGULARISED_CHURN = {"num_leaves": 7, "min_child_samples": 200}
SHALLOW_TREES = {"num_leaves": 7, "min_child_samples": 100}


def _lgbm_settings(ctx: TrainingContext, **overrides: Any) -> dict[str, Any]:
    """LightGBM's parameters from the training settings, with `overrides` replacing some."""
    s = ctx.settings
    return {
        "n_estimators": s.lgbm_n_estimators,
        "learning_rate": s.lgbm_learning_rate,
        "num_leaves": s.lgbm_num_leaves,
        "min_child_samples": s.lgbm_min_child_samples,
        "seed": s.seed,
        "label_days": ctx.cutoffs.horizon_days,
        **overrides,
    }


def _validation_for(ctx: TrainingContext, data: LabelledFrames, metadata: dict[str, Any]) -> pd.DataFrame:
    """The validation rows with the features of the service a (champion) model was trained on."""
    service = metadata.get("feature_service", data.feature_service)
    if service == data.feature_service:
        return data.validation
    keys = data.validation[["customer_id", "cutoff", *LABELS]]
    return point_in_time_features(ctx.store, keys, service)


def _tabular_logged(data: LabelledFrames, target: str, estimator: Any) -> Logged:
    columns = ["customer_id", "cutoff", *data.features, target]
    params = {k: v for k, v in vars(estimator).items() if not k.endswith("_")}
    if hasattr(estimator, "best_iteration_"):
        params["best_iteration"] = estimator.best_iteration_
    return Logged(
        params={
            **params,
            "estimator": type(estimator).__name__,
            "feature_service": data.feature_service,
            "n_features": len(data.features),
            "training_rows": len(data.train),  # after the sample above TESSERA_TRAINING_MAX_TRAINING_ROWS
        },
        inputs={"feature_service": data.feature_service, "features": data.features},
        datasets={
            "training": (data.train[columns], target),
            "validation": (data.validation[columns], target),
        },
        input_example=data.validation[["customer_id", *data.features]].head(5).reset_index(drop=True),
    )


def _target_horizon(ctx: TrainingContext) -> int:
    """The horizon the user asked for; the label window may be shorter when the history is."""
    return ctx.cutoffs.target_horizon_days


def _up_to_validation(data: LabelledFrames) -> pd.DataFrame:
    """Every labelled row up to the validation cutoff: the training cutoffs' and the validation cutoff's."""
    return pd.concat([data.train, data.validation[data.train.columns]], ignore_index=True)


def _vectors_now(ctx: TrainingContext, data: LabelledFrames) -> pd.DataFrame:
    """The feature service's vectors as of now of every customer with a sale by then (no label: none is known)."""
    customers = sales(ctx.orders)["customer_id"].unique()  # the context's orders end at now
    entities = pd.DataFrame({"customer_id": customers, "cutoff": ctx.now})
    return point_in_time_features(ctx.store, entities, data.feature_service).drop(columns="cutoff")


def _has_rfm(data: LabelledFrames) -> bool:
    return all(name in data.features for name in RFM_FEATURES)


class _TabularRecipe:
    """What churn and CLTV share: candidates over a feature-service frame, the refit, what is logged."""

    name: str
    target: str  # the label column

    def load(self, ctx: TrainingContext) -> LabelledFrames:
        """Point-in-time frames of the model's feature service (`<name>_feature_service`), labelled at the cutoffs."""
        s = ctx.settings
        service = getattr(s, f"{self.name}_feature_service")
        return labelled_frames(
            ctx.store,
            ctx.orders,
            ctx.cutoffs,
            service,
            self.target,
            s.min_customers,
            s.max_training_rows,
            s.seed,
        )

    def _estimators(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        raise NotImplementedError

    def candidates(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        """Every candidate fitted on the training cutoffs only."""
        train = data.train
        return {
            name: estimator.fit(train, train[self.target], train["cutoff"])
            for name, estimator in self._estimators(ctx, data).items()
        }

    def refit(self, ctx: TrainingContext, name: str, data: LabelledFrames) -> Any:
        """The winner refitted on every cutoff up to the validation one (the latest window calibrates it).

        A textbook BG/NBD winner (`fits_population`) also learns its served fit from the customers as of now.
        """
        rows = _up_to_validation(data)
        estimator = self._estimators(ctx, data)[name]
        now = {"population": _vectors_now(ctx, data)} if getattr(estimator, "fits_population", False) else {}
        estimator = estimator.fit(rows, rows[self.target], rows["cutoff"], **now)
        return rescaled(estimator, rows, ctx.cutoffs.horizon_days, _target_horizon(ctx))

    def logged(self, ctx: TrainingContext, model: Any, data: LabelledFrames) -> Logged:
        return _tabular_logged(data, self.target, model)


class ChurnRecipe(_TabularRecipe):
    """Churn: LightGBM on `churn_v1` with BG/NBD features, against recency, BG/NBD and LightGBM on RFM only."""

    name = "churn"
    primary_metric = "roc_auc"
    target = "churned"

    def _estimators(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        """The candidates unfitted, simplest first (a tie goes to the simpler)."""
        n, horizon, rfm = ctx.settings.churn_reasons, ctx.cutoffs.horizon_days, _has_rfm(data)
        out: dict[str, Any] = {}
        if "days_since_last_order" in data.features:
            out["recency"] = RecencyChurn(n)
        if rfm:
            out["bgnbd"] = BGNBDChurn(horizon, n)
            out["lightgbm_rfm"] = ChurnModel(n_reasons=n, features=RFM_FEATURES, **_lgbm_settings(ctx))
            out["model_on_bgnbd"] = ChurnModel(
                n_reasons=n, horizon_days=horizon, from_bgnbd=True, **_lgbm_settings(ctx, **REGULARISED_CHURN)
            )
        whole = {"n_reasons": n, "horizon_days": horizon if rfm else None}
        out["model_regularised"] = ChurnModel(**whole, **_lgbm_settings(ctx, **REGULARISED_CHURN))
        out["model"] = ChurnModel(**whole, **_lgbm_settings(ctx))
        return out

    def candidates(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        """Every candidate fitted on the training cutoffs only; the learned ones not yet calibrated.

        Selection reads the ranking alone (ROC AUC), so only the winner's Platt scaling is learnt, in `evaluate`.
        """
        train = data.train
        return {
            name: estimator.fit(train, train[self.target], train["cutoff"], calibrate=False)
            if isinstance(estimator, ChurnModel)
            else estimator.fit(train, train[self.target], train["cutoff"])
            for name, estimator in self._estimators(ctx, data).items()
        }

    def evaluate(self, ctx: TrainingContext, model: Any, data: LabelledFrames) -> Evaluation:
        val = data.validation
        if isinstance(model, ChurnModel) and model.calibrator_ is None:
            train = data.train
            model.calibrate(train, train[self.target], train["cutoff"])
        y = val["churned"].to_numpy(dtype=int)
        p = model.predict_proba(val)
        recency = days_since_last_sale(ctx.orders, val["customer_id"], ctx.cutoffs.validation)
        silent = ctx.probabilistic["p_no_purchase"].reindex(val["customer_id"]).to_numpy()
        metrics = {
            **classification_metrics(y, p),
            "churn_rate": float(y.mean()),
            "mean_probability": float(p.mean()),
        }
        baselines = {
            "days_since_last_purchase": classification_metrics(y, recency),
            "bgnbd_p_no_purchase": classification_metrics(y, silent),
        }
        scores = {"model": p, "days since last purchase": recency, "BG/NBD P(no purchase)": silent}
        tables = {"deciles": decile_table(y, p)}
        if hasattr(model, "feature_importance"):
            importance = model.feature_importance().rename("gain").rename_axis("feature").reset_index()
            tables["feature_importance"] = importance
        return Evaluation(
            metrics=metrics,
            baselines=baselines,
            figures={
                "calibration": calibration_figure(y, {"model": p, "BG/NBD P(no purchase)": silent}),
                "lift": lift_figure(y, scores),
                "deciles": decile_figure(y, {"model": p, "BG/NBD": silent}),
            },
            tables=tables,
        )

    def score(
        self, ctx: TrainingContext, model: Any, metadata: dict[str, Any], data: LabelledFrames
    ) -> float:
        frame = _validation_for(ctx, data, metadata)
        return classification_metrics(frame["churned"].to_numpy(dtype=int), model.predict_proba(frame))[
            "roc_auc"
        ]


class CLTVRecipe(_TabularRecipe):
    """CLTV: LightGBM with BG/NBD + Gamma-Gamma features on `cltv_v1` (default and shallow trees), against them and the historical average."""

    name = "cltv"
    primary_metric = "normalized_gini"
    target = "value"

    def _estimators(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        """The candidates unfitted, simplest first (a tie goes to the simpler)."""
        interval, horizon, rfm = ctx.settings.cltv_interval, ctx.cutoffs.horizon_days, _has_rfm(data)
        out: dict[str, Any] = {}
        if rfm:
            out["historical_average"] = HistoricalAverage(horizon, interval)
            out["bgnbd_gamma_gamma"] = BGNBDValue(horizon, interval)
        learned = {"interval": interval, "horizon_days": horizon if rfm else None}
        # Spend is heavy-tailed and a few customers carry most of it: small, well-populated leaves often rank
        # them better than the default trees; the validation window decides between the two.
        out["model_shallow"] = CLTVModel(**learned, **_lgbm_settings(ctx, **SHALLOW_TREES))
        out["model"] = CLTVModel(**learned, **_lgbm_settings(ctx))
        return out

    def candidates(self, ctx: TrainingContext, data: LabelledFrames) -> dict[str, Any]:
        """Every candidate fitted on the training cutoffs only; the learned ones without their interval.

        Selection reads the point alone; the winner's quantile models are fitted in `evaluate`.
        """
        train = data.train
        return {
            name: estimator.fit(train, train[self.target], train["cutoff"], interval=False)
            if isinstance(estimator, CLTVModel)
            else estimator.fit(train, train[self.target], train["cutoff"])
            for name, estimator in self._estimators(ctx, data).items()
        }

    def evaluate(self, ctx: TrainingContext, model: Any, data: LabelledFrames) -> Evaluation:
        val = data.validation
        y = val["value"].to_numpy(dtype=float)
        if isinstance(model, CLTVModel) and not model.quantiles_:
            model.fit_interval(data.train, data.train[self.target], data.train["cutoff"])
        predicted = model.predict(val)
        point = predicted["cltv"].to_numpy()
        baseline = ctx.probabilistic["expected_value"].reindex(val["customer_id"]).to_numpy()
        metrics = {
            **value_metrics(y, point),
            "interval_coverage": interval_coverage(y, predicted["cltv_low"], predicted["cltv_high"]),
            "mean_interval_width": float((predicted["cltv_high"] - predicted["cltv_low"]).mean()),
        }
        scores = {"model": point, "BG/NBD + Gamma-Gamma": baseline}
        params = pd.DataFrame([ctx.probabilistic.attrs.get("params", {})])
        return Evaluation(
            metrics=metrics,
            baselines={"bgnbd_gamma_gamma": value_metrics(y, baseline)},
            figures={"lift": lift_figure(y, scores), "deciles": decile_figure(y, scores)},
            tables={"deciles": decile_table(y, point), "probabilistic_params": params},
        )

    def score(
        self, ctx: TrainingContext, model: Any, metadata: dict[str, Any], data: LabelledFrames
    ) -> float:
        frame = _validation_for(ctx, data, metadata)
        return value_metrics(frame["value"].to_numpy(dtype=float), model.predict(frame)["cltv"].to_numpy())[
            "normalized_gini"
        ]


MIN_RECOMMENDER_CUSTOMERS = 10  # customers with history who bought in the validation window


@dataclass
class RecommenderData:
    """Events up to the validation cutoff, who bought what in the validation window, and the candidates."""

    history: pd.DataFrame
    customers: list[str]
    truth: pd.DataFrame
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Customers in the tuning window (0: no window, and the baselines keep their usual values).
    tuning_customers: int = 0
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # each candidate's constructor parameters
    fitted: dict[str, NextBestProduct] = field(default_factory=dict)  # each candidate fitted up to validation


class NextBestProductRecipe:
    """Next-best-product: a learned blend against own most bought, TIFU-KNN, item kNN, ALS and popularity."""

    name = "next_best_product"

    def __init__(self, k: int = 10) -> None:
        self.k = k
        self.primary_metric = f"ndcg_at_{k}"

    def load(self, ctx: TrainingContext) -> RecommenderData:
        require_products(ctx.events, ctx.settings.min_customers)
        v = ctx.cutoffs.validation
        end = v + ctx.cutoffs.horizon
        history = ctx.events[ctx.events["occurred_at"] <= v]
        customers, truth = validation_sample(
            ctx.events, v, end, ctx.settings.recommend_evaluation_customers, ctx.settings.seed
        )
        if len(customers) < MIN_RECOMMENDER_CUSTOMERS:
            raise ModelSkipped(
                f"{len(customers)} customers with history bought in the validation window {v:%Y-%m-%d} to "
                f"{end:%Y-%m-%d}; the recommender needs {MIN_RECOMMENDER_CUSTOMERS}"
            )
        return RecommenderData(history, customers, truth)

    def candidates(self, ctx: TrainingContext, data: RecommenderData) -> dict[str, NextBestProduct]:
        """The learned blend and every baseline, tuned on a window before validation and fitted up to it."""
        if not data.fitted:
            s, v = ctx.settings, ctx.cutoffs.validation
            base = signal_params(s)
            space = SearchSpace(
                s.als_factors,
                s.als_regularization,
                s.als_alpha,
                s.tifu_within_decay,
                s.tifu_across_decay,
                s.tifu_neighbours,
                s.tifu_own_weight,
                s.tifu_group_size,
            )
            window = tuning_window(data.history, v, ctx.cutoffs.horizon_days, ctx.catalogue, s.seed)
            # Too few buyers in the tuning window: no blend is learnt, and TIFU-KNN keeps the paper's values.
            learning = {**base, "iterations": s.als_iterations}
            tuned = None if window is None else tune(window, space, learning, self.k, s.seed)
            data.tuning_customers = 0 if window is None else len(window.customers)
            data.params = baseline_params(base, None if tuned is None else tuned.tifu)
            if tuned is not None:
                data.trials = tuned.trials
                if tuned.learned is not None:
                    data.params["learned"] = tuned.learned
            guests = ctx.anonymous_purchases
            anonymous = guests[guests["occurred_at"] <= v]  # popularity only: nobody's history
            data.fitted = {
                name: NextBestProduct(**params).fit(data.history, v, ctx.catalogue, anonymous)
                for name, params in data.params.items()
            }
        return dict(data.fitted)

    def refit(self, ctx: TrainingContext, name: str, data: RecommenderData) -> NextBestProduct:
        """A candidate's configuration fitted on every event up to now: the latest behaviour, for serving."""
        return NextBestProduct(**data.params[name]).fit(
            ctx.events, ctx.now, ctx.catalogue, ctx.anonymous_purchases
        )

    def evaluate(self, ctx: TrainingContext, model: NextBestProduct, data: RecommenderData) -> Evaluation:
        k, v = self.k, ctx.cutoffs.validation
        methods = {"model": model, **self.candidates(ctx, data)}
        measured = {
            name: ranking_metrics(
                top_lists(method.recommend(data.history, v, data.customers, k)), data.truth, k
            )
            for name, method in methods.items()
        }
        metrics = measured.pop("model")
        table = pd.DataFrame({"model": metrics, **measured}).T.drop(columns="customers")
        shown = [f"recall_at_{k}", f"ndcg_at_{k}", f"hit_rate_at_{k}"]
        blend = pd.DataFrame(model.blend_).T.rename_axis("assortment").reset_index()
        return Evaluation(
            metrics=metrics,
            baselines=measured,
            figures={"comparison": comparison_figure(table, shown)},
            tables={
                "comparison": table.rename_axis("method").reset_index(),
                "tuning": data.trials,
                "blend": blend,
            },
        )

    def score(
        self, ctx: TrainingContext, model: Any, metadata: dict[str, Any], data: RecommenderData
    ) -> float:
        recommended = model.recommend(data.history, ctx.cutoffs.validation, data.customers, self.k)
        return ranking_metrics(top_lists(recommended), data.truth, self.k)[self.primary_metric]

    def logged(self, ctx: TrainingContext, model: NextBestProduct, data: RecommenderData) -> Logged:
        s = ctx.settings
        params = {
            **model.get_params(),
            "blend": model.blend_,
            "k": self.k,
            "items": len(model.items_),
            "tuning_customers": data.tuning_customers,
        }
        example_customers = list(pd.unique(data.history["customer_id"]))[:2]
        example = data.history[data.history["customer_id"].isin(example_customers)].head(20)
        example = example.rename(columns={"kind": "event_type"})[
            ["customer_id", "sku", "event_type", "occurred_at", "count"]
        ]
        example = example.assign(occurred_at=example["occurred_at"].map(pd.Timestamp.isoformat)).astype(
            {"count": float}
        )
        # A customer without history: one row without a sku.
        cold = {
            "customer_id": "new-customer",
            "sku": None,
            "event_type": None,
            "occurred_at": None,
            "count": np.nan,
        }
        example = pd.concat([example, pd.DataFrame([cold])], ignore_index=True)
        truth = data.truth.assign(cutoff=ctx.cutoffs.validation)
        return Logged(
            params=params,
            inputs={
                "feature_service": "none: profile events",
                "signals": list(s.event_weights),
                "categories_known": bool(ctx.catalogue is not None),
            },
            datasets={"training": (data.history, None), "validation": (truth, None)},
            input_example=example,
            # These become the signature's defaults: neutral values ("" = the current time, no filter).
            params_example={
                "now": "",
                "k": self.k,
                "exclude_purchased": False,
                "categories": [""],
                "exclude_skus": [""],
                "personalised": True,
            },
        )


def recipe_for(name: str, settings: TrainingSettings) -> ChurnRecipe | CLTVRecipe | NextBestProductRecipe:
    """The recipe of a model by its registered name."""
    if name == "churn":
        return ChurnRecipe()
    if name == "cltv":
        return CLTVRecipe()
    if name == "next_best_product":
        return NextBestProductRecipe(k=settings.recommend_k)
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


MODELS = ("churn", "cltv", "next_best_product")
