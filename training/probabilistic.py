"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader, Hardie & Lee 2005b): the probabilistic baseline.

Both follow the estimator rules: `fit` returns self, fitted parameters end in `_`. Inputs are the classic
per-customer summary: `frequency` (repeat transactions: purchase days after the first), `recency` (time
from the first to the last purchase) and `T` (time from the first purchase to the cutoff), in one time unit,
plus `monetary` (mean value of the repeat transactions) for Gamma-Gamma. `rfm_summary` builds it from orders.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, gammaln, hyp2f1

from training.tabular import StoppingSplit, TabularEncoder, stopping_split, time_holdout

DAY = pd.Timedelta(days=1)


def rfm_summary(orders: pd.DataFrame, cutoff: datetime, unit_days: float = 7.0) -> pd.DataFrame:
    """Frequency, recency, T (in `unit_days`) and repeat-purchase mean value per customer, from orders up to `cutoff`.

    `orders` needs customer_id, ordered_at and amount; a transaction is a day with purchases (its amounts summed),
    so several orders on one day count once, as in the published CDNOW analyses.
    """
    cutoff_ts = pd.Timestamp(cutoff)
    known = orders[orders["ordered_at"] <= cutoff_ts]
    if known.empty:
        return pd.DataFrame(
            columns=["frequency", "recency", "T", "monetary"], index=pd.Index([], name="customer_id")
        )
    days = known.assign(day=known["ordered_at"].dt.floor("D"))
    daily = days.groupby(["customer_id", "day"], observed=True, sort=True)["amount"].sum().reset_index()
    per = daily.groupby("customer_id", observed=True)
    first, last, count = per["day"].min(), per["day"].max(), per["day"].size()
    total, first_value = per["amount"].sum(), per["amount"].first()
    frequency = (count - 1).astype(float)
    unit = DAY * unit_days
    # Time is counted in whole days up to the last day observed (the day of the last moment before the cutoff),
    # as in the published CDNOW analyses: a 1997-10-01 cutoff observes up to 1997-09-30.
    cutoff_day = (cutoff_ts - pd.Timedelta(1, "us")).floor("D")
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first) / unit,
            "T": (cutoff_day - first) / unit,
            "monetary": np.where(
                frequency > 0, (total - first_value) / frequency.where(frequency > 0, 1), 0.0
            ),
        }
    )
    summary.index.name = "customer_id"
    return summary


def _grouped(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of `columns` and how often each occurs: the likelihood is summed once per distinct row."""
    counts = frame.groupby(columns, sort=False).size()
    return np.asarray(counts.index.to_frame(index=False), dtype=float), counts.to_numpy(dtype=float)


def _minimise(negative: Callable[[np.ndarray], float], start: np.ndarray, max_iter: int) -> OptimizeResult:
    """Nelder-Mead to get near the optimum robustly, then L-BFGS-B from there to polish it."""
    rough = minimize(
        negative, start, method="Nelder-Mead", options={"maxiter": max_iter, "xatol": 1e-8, "fatol": 1e-12}
    )
    return minimize(negative, rough.x, method="L-BFGS-B")


class BetaGeoFitter:
    """BG/NBD: purchases follow a Poisson process while alive; after each purchase the customer may drop out."""

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    @staticmethod
    def _log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore"):
            a4 = np.where(
                x > 0,
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(self, summary: pd.DataFrame) -> BetaGeoFitter:
        """Maximum-likelihood r, alpha, a, b from frequency, recency and T."""
        rows, weights = _grouped(summary, ["frequency", "recency", "T"])
        x, t_x, T = rows.T
        scale = max(float(np.mean(T)), 1e-9)  # fit with time rescaled so the optimiser sees numbers near 1

        def negative(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            ll = self._log_likelihood(params, x, t_x / scale, T / scale)
            return -float(weights @ ll) / weights.sum() + self.penalizer * float(np.sum(params**2))

        result = _minimise(negative, np.log([1.0, 1.0, 1.0, 1.0]), self.max_iter)
        r, alpha, a, b = np.exp(result.x)
        self.r_, self.alpha_, self.a_, self.b_ = float(r), float(alpha * scale), float(a), float(b)
        self.log_likelihood_ = -float(result.fun) * weights.sum()
        return self

    @property
    def params_(self) -> dict[str, float]:
        """The fitted parameters by their published names."""
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def _terms(self, summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x = summary["frequency"].to_numpy(float)
        t_x = summary["recency"].to_numpy(float)
        T = summary["T"].to_numpy(float)
        # d = delta(x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x), in logs to avoid overflow.
        with np.errstate(divide="ignore"):
            log_d = np.where(
                x > 0,
                np.log(self.a_)
                - np.log(np.maximum(self.b_ + x - 1, 1e-300))
                + (self.r_ + x) * (np.log(self.alpha_ + T) - np.log(self.alpha_ + t_x)),
                -np.inf,
            )
        return x, t_x, T, log_d

    def probability_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """P(still alive at the cutoff | history)."""
        *_, log_d = self._terms(summary)
        return 1.0 / (1.0 + np.exp(np.minimum(log_d, 700)))

    def expected_purchases(self, t: float, summary: pd.DataFrame) -> np.ndarray:
        """Expected transactions in the next `t` time units given each customer's history."""
        x, _, T, log_d = self._terms(summary)
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        z = t / (alpha + T + t)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        return numerator / (1.0 + np.exp(np.minimum(log_d, 700)))

    def probability_no_purchase(self, t: float, summary: pd.DataFrame) -> np.ndarray:
        """P(no transaction in the next `t` time units | history): dead, or alive and silent for `t`.

        A customer drops out only right after a purchase, so one alive at T who buys nothing in (T, T + t] stays
        alive; with purchase rate Gamma(r + x, alpha + T) given the history, P(silent | alive) is
        ((alpha + T) / (alpha + T + t))^(r + x).
        """
        x, _, T, _ = self._terms(summary)
        alive = self.probability_alive(summary)
        silent = ((self.alpha_ + T) / (self.alpha_ + T + t)) ** (self.r_ + x)
        return 1.0 - alive + alive * silent


def repeat_spenders(summary: pd.DataFrame) -> pd.Series:
    """Mask of the summary's repeat buyers with positive spend: whom Gamma-Gamma (and MeanSpend) learn from."""
    return (summary["frequency"] > 0) & (summary["monetary"] > 0)


class GammaGammaFitter:
    """Gamma-Gamma: each customer's mean transaction value varies around their own, gamma-distributed mean."""

    MIN_REPEAT_BUYERS = 3  # fewer cannot identify its three parameters (`fit_spend` falls back to MeanSpend)

    def __init__(self, penalizer: float = 0.0, max_iter: int = 2000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def fit(self, summary: pd.DataFrame) -> GammaGammaFitter:
        """Maximum-likelihood p, q, gamma from repeat buyers' frequency and mean repeat-transaction value."""
        repeat = summary[repeat_spenders(summary)]
        if len(repeat) < self.MIN_REPEAT_BUYERS:
            raise ValueError(f"Gamma-Gamma needs repeat buyers with positive spend; got {len(repeat)}")
        rows, weights = _grouped(repeat, ["frequency", "monetary"])
        x, m = rows.T
        scale = float(np.average(m, weights=weights))

        def negative(log_params: np.ndarray) -> float:
            p, q, v = np.exp(log_params)
            ms = m / scale
            ll = (
                gammaln(p * x + q)
                - gammaln(p * x)
                - gammaln(q)
                + q * np.log(v)
                + (p * x - 1) * np.log(ms)
                + p * x * np.log(x)
                - (p * x + q) * np.log(v + ms * x)
            )
            return -float(weights @ ll) / weights.sum() + self.penalizer * float(
                np.sum(np.exp(log_params) ** 2)
            )

        result = _minimise(negative, np.zeros(3), self.max_iter)
        p, q, v = np.exp(result.x)
        self.p_, self.q_, self.gamma_ = float(p), float(q), float(v * scale)
        # Customers without repeat purchases take the population mean spend per transaction.
        self.population_mean_ = float(self.p_ * self.gamma_ / (self.q_ - 1)) if self.q_ > 1 else scale
        return self

    @property
    def params_(self) -> dict[str, float]:
        """The fitted parameters by their published names."""
        return {"p": self.p_, "q": self.q_, "gamma": self.gamma_}

    def expected_average_value(self, summary: pd.DataFrame) -> np.ndarray:
        """E[mean transaction value | history]; the population mean for customers without repeat purchases."""
        x = summary["frequency"].to_numpy(float)
        m = summary["monetary"].to_numpy(float).clip(min=0)
        p, q, v = self.p_, self.q_, self.gamma_
        with np.errstate(invalid="ignore", divide="ignore"):
            conditional = (v + m * x) * p / (p * x + q - 1)
        return np.where(x > 0, conditional, self.population_mean_)


class MeanSpend:
    """The spend model when Gamma-Gamma cannot be fitted (fewer than 3 repeat buyers with positive spend, e.g. an
    export without amounts): a repeat buyer's own mean transaction value, everyone else the mean over them (0 when
    nobody spent)."""

    def fit(self, summary: pd.DataFrame) -> MeanSpend:
        spent = summary[repeat_spenders(summary)]
        self.population_mean_ = float(spent["monetary"].mean()) if len(spent) else 0.0
        return self

    @property
    def params_(self) -> dict[str, float]:
        return {"mean_spend": self.population_mean_}

    def expected_average_value(self, summary: pd.DataFrame) -> np.ndarray:
        m = summary["monetary"].to_numpy(float)
        return np.where(repeat_spenders(summary).to_numpy(), m, self.population_mean_)


def fit_spend(summary: pd.DataFrame, penalizer: float) -> GammaGammaFitter | MeanSpend:
    """Gamma-Gamma on the summary's repeat buyers, or MeanSpend when there are too few with positive spend."""
    if repeat_spenders(summary).sum() < GammaGammaFitter.MIN_REPEAT_BUYERS:
        return MeanSpend().fit(summary)
    return GammaGammaFitter(penalizer).fit(summary)


class ProbabilisticCLV:
    """BG/NBD expected transactions times Gamma-Gamma expected value: value over a horizon, no features needed."""

    def __init__(self, unit_days: float = 7.0, penalizer: float = 0.0) -> None:
        self.unit_days = unit_days
        self.penalizer = penalizer

    def fit(self, orders: pd.DataFrame, cutoff: datetime) -> ProbabilisticCLV:
        """Fit both models on the purchase history before `cutoff`."""
        summary = rfm_summary(orders, cutoff, self.unit_days)
        self.bgnbd_ = BetaGeoFitter(self.penalizer).fit(summary)
        self.gamma_gamma_ = fit_spend(summary, self.penalizer)
        return self

    def predict(self, orders: pd.DataFrame, cutoff: datetime, horizon_days: float) -> pd.DataFrame:
        """Per customer with history before `cutoff`: P(alive), P(no purchase), expected transactions and value over the horizon."""
        summary = rfm_summary(orders, cutoff, self.unit_days)
        purchases = self.bgnbd_.expected_purchases(horizon_days / self.unit_days, summary)
        value = self.gamma_gamma_.expected_average_value(summary)
        return pd.DataFrame(
            {
                "p_alive": self.bgnbd_.probability_alive(summary),
                "p_no_purchase": self.bgnbd_.probability_no_purchase(horizon_days / self.unit_days, summary),
                "expected_purchases": purchases,
                "expected_value": purchases * value,
            },
            index=summary.index,
        )


# The transaction figures of a churn_v1 / cltv_v1 vector: enough to rebuild the BG/NBD summary at serving time.
RFM_FEATURES = ("orders_lifetime", "spend_lifetime", "days_since_last_order", "tenure_days")


def rfm_from_features(frame: pd.DataFrame, unit_days: float = 7.0) -> pd.DataFrame:
    """The BG/NBD summary (frequency, recency, T, monetary) rebuilt from a feature vector, one row per input row.

    An order stands for a transaction (the vector counts orders, not purchase days) and monetary is the mean
    order value; a customer without orders is a new one (frequency, recency and T all 0).
    """
    missing = [name for name in RFM_FEATURES if name not in frame.columns]
    if missing:
        raise ValueError(f"the probabilistic features need {', '.join(missing)} in the feature vector")
    orders = pd.to_numeric(frame["orders_lifetime"], errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
    spend = pd.to_numeric(frame["spend_lifetime"], errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
    tenure = pd.to_numeric(frame["tenure_days"], errors="coerce").fillna(0).clip(lower=0).to_numpy(float)
    silent = pd.to_numeric(frame["days_since_last_order"], errors="coerce").to_numpy(float)
    silent = np.where(np.isnan(silent), tenure, np.minimum(silent, tenure))
    frequency = np.maximum(orders - 1, 0)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (tenure - silent) / unit_days,
            "T": tenure / unit_days,
            "monetary": np.where(frequency > 0, spend / np.maximum(orders, 1), 0.0),
        },
        index=frame.index,
    )


# The penalizer of the BG/NBD and Gamma-Gamma features: keeps the fit finite on data whose purchase rates hardly
# vary (the likelihood then keeps improving as r and alpha grow without bound).
PENALIZER = 0.001
# A shape parameter beyond this is a fit running away (r = 1.7e8 on customers who all buy every four weeks).
RUNAWAY = 1e4

Fitted = TypeVar("Fitted", BetaGeoFitter, GammaGammaFitter, MeanSpend)


def unless_runaway(fit: Callable[[float], Fitted], penalizer: float | None) -> Fitted:
    """`fit(penalizer)`; with None, the textbook fit: unpenalised, unless a shape parameter runs away (or is not
    finite), then penalised by PENALIZER. The textbook fit ranks better where it converges (three months of
    grocery sales: validation Gini 0.663 against 0.652 penalised, docs/models.md)."""
    if penalizer is not None:
        return fit(penalizer)
    fitted = fit(0.0)
    shapes = [v for k, v in getattr(fitted, "params_", {}).items() if k in ("r", "a", "b", "p", "q")]
    return fitted if all(np.isfinite(v) and v < RUNAWAY for v in shapes) else fit(PENALIZER)


class ProbabilisticFeatures:
    """BG/NBD and Gamma-Gamma fitted on feature vectors, giving their quantities over a horizon for any vector.

    Fitted at training time on one cutoff's vectors (unsupervised: no label is read), it then turns any
    churn_v1 / cltv_v1 vector, a served one included, into P(alive), P(no purchase in the horizon),
    expected purchases and expected value. A small penalizer keeps the fit finite on data whose purchase rates
    hardly vary (the likelihood then keeps improving as r and alpha grow without bound).
    """

    def __init__(
        self, horizon_days: float, unit_days: float = 7.0, penalizer: float | None = PENALIZER
    ) -> None:
        self.horizon_days = horizon_days
        self.unit_days = unit_days
        # None: the textbook fit, unpenalised unless it runs away (`unless_runaway`).
        self.penalizer = penalizer

    def fit(self, frame: pd.DataFrame) -> ProbabilisticFeatures:
        """Fit both models on the vectors' summaries (one row per customer at one cutoff), times to the day.

        The likelihood is summed once per distinct (frequency, recency, T): with times to the second nearly every
        customer is distinct (15,084 of 15,086 on two years of marketplace orders, 16.6 s for one unpenalised
        fit), to the day a few thousand are, as lifetimes' daily summaries have them.
        """
        summary = rfm_from_features(frame, self.unit_days)
        days = summary[["recency", "T"]] * self.unit_days
        summary[["recency", "T"]] = days.round() / self.unit_days
        self.bgnbd_ = unless_runaway(lambda p: BetaGeoFitter(p).fit(summary), self.penalizer)
        self.gamma_gamma_ = unless_runaway(lambda p: fit_spend(summary, p), self.penalizer)
        return self

    def transform(self, frame: pd.DataFrame, horizon_days: float | None = None) -> pd.DataFrame:
        """p_alive, p_no_purchase, expected_purchases and expected_value over the horizon (default: the fitted one)."""
        summary = rfm_from_features(frame, self.unit_days)
        t = (self.horizon_days if horizon_days is None else horizon_days) / self.unit_days
        purchases = self.bgnbd_.expected_purchases(t, summary)
        return pd.DataFrame(
            {
                "p_alive": self.bgnbd_.probability_alive(summary),
                "p_no_purchase": self.bgnbd_.probability_no_purchase(t, summary),
                "expected_purchases": purchases,
                "expected_value": purchases * self.gamma_gamma_.expected_average_value(summary),
            },
            index=frame.index,
        )


def fitted_where_scored(
    frame: pd.DataFrame, horizon_days: int, served: ProbabilisticFeatures
) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma quantities, the textbook way: from a fit on the population being scored.

    Rows of a labelled frame (one with a `cutoff` column) are scored by a fit on their own cutoff's rows (no label
    read), so a candidate is validated as it is served; served vectors (no `cutoff`) by `served`, the fit on the
    population at the refit. A fit one label window older scores a population that has aged since: on three
    months of grocery sales the validation AUC of P(no purchase) fell from 0.798 to 0.770 (docs/models.md).
    """
    if "cutoff" not in frame.columns:
        return served.transform(frame)
    out = pd.DataFrame(np.nan, index=frame.index, columns=list(served.transform(frame.head(1)).columns))
    for positions in frame.groupby("cutoff", sort=False).indices.values():
        out.iloc[positions] = _fitted_on_own_rows(frame.iloc[positions], horizon_days)
    return out


# A cutoff's own fit is the same whichever candidate asks for it (`bgnbd`, `model_on_bgnbd`, the value
# candidates) and at whichever step (fit, calibration, validation, refit): kept by what it is a function of,
# the rows' BG/NBD summaries and the horizon. A training run asks for a few dozen; a served vector never does.
_OWN_FITS: OrderedDict[bytes, np.ndarray] = OrderedDict()
_OWN_FITS_KEPT = 32


def forget_own_fits() -> None:
    """Drop the kept fits: a training run ends with them (a scheduler's process lives on between runs)."""
    _OWN_FITS.clear()


def _fitted_on_own_rows(rows: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """`ProbabilisticFeatures` fitted on `rows` unpenalised and scoring them (the quantities as an array, one row
    per row), fitted once per distinct summaries and horizon."""
    features = ProbabilisticFeatures(horizon_days, penalizer=None)
    summary = np.ascontiguousarray(rfm_from_features(rows, features.unit_days).to_numpy(float))
    key = hashlib.blake2b(summary.tobytes() + repr(horizon_days).encode(), digest_size=16).digest()
    if key in _OWN_FITS:
        _OWN_FITS.move_to_end(key)
        return _OWN_FITS[key]
    quantities = features.fit(rows).transform(rows).to_numpy(float)
    quantities.flags.writeable = False
    _OWN_FITS[key] = quantities
    if len(_OWN_FITS) > _OWN_FITS_KEPT:
        _OWN_FITS.popitem(last=False)
    return quantities


def bgnbd_log_odds(frame: pd.DataFrame, horizon_days: int, served: ProbabilisticFeatures) -> np.ndarray:
    """BG/NBD's P(no purchase within the horizon) as log-odds, fitted where scored (`fitted_where_scored`)."""
    p = fitted_where_scored(frame, horizon_days, served)["p_no_purchase"].to_numpy(float)
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def model_inputs(
    frame: pd.DataFrame, features: tuple[str, ...] | None, quantities: ProbabilisticFeatures | None
) -> pd.DataFrame:
    """A learned model's input: the chosen columns of the frame (all when None), plus BG/NBD quantities when given."""
    chosen = frame if features is None else frame[[c for c in frame.columns if c in features]]
    return chosen if quantities is None else chosen.join(quantities.transform(frame))


@dataclass(frozen=True)
class FittedInputs:
    """What a learned model fits on: its latest-cutoff mask, its early-stopping split, the BG/NBD quantities, the
    encoder, the matrix."""

    latest: np.ndarray
    stopping: StoppingSplit
    quantities: ProbabilisticFeatures | None
    encoder: TabularEncoder
    X: pd.DataFrame


def fit_inputs(
    frame: pd.DataFrame,
    cutoffs: pd.Series,
    features: tuple[str, ...] | None,
    horizon_days: int | None,
    label_days: int | None = None,
) -> FittedInputs:
    """Fit a learned model's inputs: BG/NBD on the latest cutoff's vectors (when a horizon is given), the encoder."""
    frame = frame.reset_index(drop=True)
    latest = time_holdout(cutoffs, frame["customer_id"])
    quantities = None if horizon_days is None else ProbabilisticFeatures(horizon_days).fit(frame[latest])
    inputs = model_inputs(frame, features, quantities)
    encoder = TabularEncoder().fit(inputs)
    stopping = stopping_split(cutoffs, frame["customer_id"], label_days)
    return FittedInputs(latest, stopping, quantities, encoder, encoder.transform(inputs))
