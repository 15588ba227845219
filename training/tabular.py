"""What the two LightGBM models share: frames as model input, the time holdout, early stopping, importance.

The encoder follows the estimator rules so a fitted model carries the exact columns and categories it saw:
at serving time an unseen category becomes missing instead of shifting the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

# Columns of a training frame that are keys or labels, never features.
KEY_COLUMNS = ("customer_id", "cutoff", "event_timestamp", "request_time", "churned", "value", "sku")


class TabularEncoder:
    """Numbers and booleans to float, text to pandas categories fixed at fit; other columns dropped."""

    def __init__(self, exclude: tuple[str, ...] = KEY_COLUMNS) -> None:
        self.exclude = exclude

    def fit(self, frame: pd.DataFrame) -> TabularEncoder:
        """Learn the feature columns, which of them are categorical, and each one's categories."""
        self.features_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        for name in frame.columns:
            if name in self.exclude:
                continue
            column = frame[name]
            if _is_text(column):
                values = column.dropna().astype(str)
                self.categories_[name] = sorted(values.unique().tolist())
            elif not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
                continue  # lists and timestamps (e.g. last_order_skus) are not tabular features
            self.features_.append(name)
        if not self.features_:
            raise ValueError(f"no usable feature columns among {list(frame.columns)}")
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input: the fitted columns in order, missing ones as NaN, categories as fitted."""
        missing = [name for name in self.features_ if name not in frame.columns]
        if len(missing) == len(self.features_):
            raise ValueError(f"none of the model's features are present; expected {self.features_}")
        out = {}
        for name in self.features_:
            column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
            if name in self.categories_:
                text = column.astype("object").where(column.notna(), None)
                text = text.map(lambda v: None if v is None else str(v))
                out[name] = pd.Categorical(text, categories=self.categories_[name])
            elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
                out[name] = column.astype(float)  # plain numbers: the common case, and the fast one
            else:
                out[name] = pd.to_numeric(
                    column.astype("object").where(column.notna(), np.nan), errors="coerce"
                ).astype(float)
        return pd.DataFrame(out, index=frame.index)


def with_customer_id(frame: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions with the input's customer_id in front when it had one, so a caller can join them back."""
    if "customer_id" in frame.columns:
        predictions.insert(0, "customer_id", frame["customer_id"].astype(str).to_numpy())
    return predictions


def _is_text(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(column.dtype):
        return True
    if column.dtype == object:
        sample = column.dropna().head(50)
        return bool(len(sample)) and all(isinstance(v, str) for v in sample)
    return False


def time_holdout(cutoffs: pd.Series, customer_ids: pd.Series) -> np.ndarray:
    """Mask of the rows held out for early stopping and calibration: those of the latest cutoff.

    With a single cutoff, a stable hash of the customer id holds out a fifth of the customers instead.
    """
    values = pd.to_datetime(pd.Series(cutoffs).reset_index(drop=True))
    if values.nunique() > 1:
        holdout = (values == values.max()).to_numpy()
    else:
        ids = pd.Series(customer_ids).reset_index(drop=True).astype(str)
        holdout = pd.util.hash_pandas_object(ids, index=False).to_numpy() % 5 == 0
    return holdout


def with_cutoffs(frame: pd.DataFrame, cutoffs: pd.Series) -> pd.DataFrame:
    """`frame` indexed 0..n-1 with each row's cutoff as its `cutoff` column: a labelled frame, scored as one."""
    return frame.reset_index(drop=True).assign(cutoff=pd.Series(cutoffs).reset_index(drop=True))


@dataclass(frozen=True)
class StoppingSplit:
    """Masks of the rows the trees learn from and of the rows early stopping reads (`stopping_split`)."""

    fit: np.ndarray
    holdout: np.ndarray


def stopping_split(
    cutoffs: pd.Series, customer_ids: pd.Series, label_days: int | None = None
) -> StoppingSplit:
    """Which rows early stopping reads and which the trees learn from: the latest cutoff's rows against rows
    whose label window ended by then, as validation stands to training; failing that, customers held out.

    1. With `label_days` known and a cutoff at least that long before the latest: the latest cutoff's rows are
       read and the trees learn from the rows of those earlier cutoffs (the same customers, as when served).
    2. Otherwise a fifth of the customers (by a stable hash of the id) is held out: early stopping reads their
       rows of the latest cutoff, the trees learn from every row of the other customers. A customer's rows at
       neighbouring cutoffs share most of their label window: stopping on the latest rows of customers whose
       earlier rows were learnt made those rows look predictable and the trees never stopped (300 trees of 300
       on nine months of history with cutoffs eight days apart; validation ROC AUC 0.693, stopped 0.720:
       docs/benchmarks.md). With one cutoff the fifth's rows are read, as `time_holdout` gives them.
    """
    values = pd.to_datetime(pd.Series(cutoffs).reset_index(drop=True))
    latest = (values == values.max()).to_numpy()
    if label_days is not None and values.nunique() > 1:
        ended = (values + pd.Timedelta(days=label_days) <= values.max()).to_numpy()
        if ended.any():
            return StoppingSplit(fit=ended, holdout=latest)
    ids = pd.Series(customer_ids).reset_index(drop=True).astype(str)
    held_out = pd.util.hash_pandas_object(ids, index=False).to_numpy() % 5 == 0
    holdout = held_out & latest
    if holdout.any() and (~held_out).any():
        return StoppingSplit(fit=~held_out, holdout=holdout)
    fallback = time_holdout(cutoffs, customer_ids)
    return StoppingSplit(fit=~fallback, holdout=fallback)


def fit_early_stopped(
    model: lgb.LGBMModel,
    X: pd.DataFrame,
    y: np.ndarray,
    split: StoppingSplit,
    init_score: np.ndarray | None = None,
    **fit_params: object,
) -> lgb.LGBMModel:
    """Fit on `split.fit`'s rows, stopping when `split.holdout`'s rows stop improving for 50 rounds.

    `init_score`: each row's starting raw score (the trees learn corrections to it), on both sides.
    """
    fit, holdout = split.fit, split.holdout
    starts = (
        {}
        if init_score is None
        else {"init_score": init_score[fit], "eval_init_score": [init_score[holdout]]}
    )
    return model.fit(
        X[fit],
        y[fit],
        eval_X=(X[holdout],),
        eval_y=(y[holdout],),
        callbacks=[lgb.early_stopping(50, verbose=False)],
        **starts,
        **fit_params,
    )


def gain_importance(model: lgb.LGBMModel, features: list[str]) -> pd.Series:
    """Total gain per feature, largest first."""
    gain = model.booster_.feature_importance(importance_type="gain")
    return pd.Series(gain, index=features).sort_values(ascending=False)


def lgbm_params(
    n_estimators: int, learning_rate: float, num_leaves: int, min_child_samples: int, seed: int
) -> dict[str, object]:
    """Keyword arguments shared by every LightGBM model: deterministic, two threads, quiet."""
    return {
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": seed,
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": 2,
        "verbose": -1,
    }
