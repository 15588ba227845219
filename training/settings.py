"""Training settings: horizon, cutoffs, hyper-parameters, the promotion gate and the retraining schedule.

Read from `TESSERA_TRAINING_*` environment variables and an optional `.env`; nothing happens at import.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainingSettings(BaseSettings):
    """Everything the three models and their retraining need to know, with documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="TESSERA_TRAINING_", env_file=".env", extra="ignore", frozen=True
    )

    # Days after a cutoff that a label looks at: churn = no purchase in it, CLTV = value in it.
    horizon_days: int = Field(90, ge=7)
    # Training cutoffs before the validation cutoff, and the days between consecutive ones.
    # The default six cutoffs two months apart span a year, so every season is among the training examples.
    training_cutoffs: int = Field(6, ge=1)
    cutoff_spacing_days: int = Field(61, ge=1)
    # Cutoffs are planned inside the sales actually present (docs/models.md, "History length"): the first
    # cutoff leaves at least `min_history_days` of history before it, and when the history is too short for
    # `horizon_days` the labels cover the longest window that fits, never fewer than `min_horizon_days` (a week:
    # a month of sales still trains, on windows of nine days, with the textbook models among the candidates).
    min_history_days: int = Field(60, ge=1)
    min_horizon_days: int = Field(7, ge=1)
    # Below this many customers with a purchase before the validation cutoff a model is skipped, not trained.
    min_customers: int = Field(100, ge=1)
    # Customer-cutoff rows churn and CLTV learn from: above it, a seeded sample of customers, the same ones at every
    # training cutoff (the validation window keeps every customer). 100,000 customers' cutoffs fit whole; at
    # 400,000 churn took 10.7 GiB whole, so about 1.4 million customers would not fit 24 GiB (docs/benchmarks.md).
    max_training_rows: int = Field(1_000_000, ge=1_000)
    seed: int = 42
    # The models `train all`, `tessera run` and `retrain` train.
    models: tuple[str, ...] = ("churn", "cltv", "next_best_product")
    # Feature services the models train and serve on (features/feature_repo/feature_services.py).
    churn_feature_service: str = "churn_v1"
    cltv_feature_service: str = "cltv_v1"

    # LightGBM, shared by churn and CLTV.
    lgbm_n_estimators: int = 300
    lgbm_learning_rate: float = 0.05
    lgbm_num_leaves: int = 31
    lgbm_min_child_samples: int = 40
    # Central interval of the CLTV model: (lower, upper) quantiles.
    cltv_interval: tuple[float, float] = (0.1, 0.9)
    # Churn: number of per-customer reasons reported.
    churn_reasons: int = 3

    # Next-best-product: signal weights, recency half-life and the ALS search space.
    event_weights: dict[str, float] = {"purchase": 1.0, "add_to_cart": 0.4, "product_view": 0.1}
    recency_half_life_days: float = 120.0
    als_factors: tuple[int, ...] = (32, 64)
    als_regularization: tuple[float, ...] = (0.05, 0.5)
    als_alpha: tuple[float, ...] = (5.0, 20.0)
    als_iterations: int = 15
    # TIFU-KNN (a candidate, and the learned blend's personal and neighbour vectors): the grid tuned on a window
    # inside the history. Decay within a group of baskets and across groups, baskets per group, neighbours, and
    # the weight of the customer's own vector against the neighbours'.
    tifu_within_decay: tuple[float, ...] = (0.9, 1.0)
    tifu_across_decay: tuple[float, ...] = (0.6, 0.9)
    tifu_group_size: int = 7
    tifu_neighbours: tuple[int, ...] = (100, 300)
    tifu_own_weight: tuple[float, ...] = (0.5, 0.7, 0.9)
    # Days of recent sales behind the "recent popularity" baseline and the cold-start fallback.
    recent_popularity_days: int = 28
    recommend_k: int = 10
    # Customers the recommender is evaluated on (a seeded sample when more bought in the validation window).
    recommend_evaluation_customers: int = 20_000

    # Customers whose golden record says they withdrew consent to profiling are left out of every training and
    # evaluation set (labels, features, the recommender's signals) when true; false trains on everyone.
    exclude_without_profiling_consent: bool = True

    # Promotion gate: a challenger becomes champion when its metric > champion's - tolerance (0: it must beat the
    # champion; a tie keeps the champion in production).
    gate_tolerance: float = 0.0

    # Unattended retraining: the cron expression `tessera schedule` uses (minute hour day month weekday, UTC).
    retrain_cron: str = "0 3 * * 1"
