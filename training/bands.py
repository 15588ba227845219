"""The bands of the churn and CLTV scores: one place that both serving and activation read.

Risk bands cut the churn probability at fixed thresholds; value bands are relative to the customer base
(quantiles of the predicted value), so "high" is the top of this retailer whatever its currency and size.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np

Band = Literal["low", "medium", "high"]

# Churn probability thresholds between the low/medium and medium/high risk bands.
RISK_BANDS: tuple[float, float] = (0.3, 0.6)
# Quantiles of predicted value between the low/medium and medium/high value bands.
VALUE_BAND_QUANTILES: tuple[float, float] = (0.5, 0.8)


def band(value: float, thresholds: tuple[float, float]) -> Band:
    """low below the first threshold, high from the second, medium between."""
    if value >= thresholds[1]:
        return "high"
    return "medium" if value >= thresholds[0] else "low"


def value_band(value: float, thresholds: tuple[float, float]) -> Band:
    """The value band; a customer predicted to spend nothing is never above "low", even when most are 0."""
    return "low" if value <= 0 else band(value, thresholds)


def quantile_thresholds(values: Iterable[float], quantiles: tuple[float, float]) -> tuple[float, float]:
    """The value bands' thresholds: the given quantiles of predicted values (0, 0 for none)."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return 0.0, 0.0
    low, high = np.quantile(array, quantiles)
    return float(low), float(high)
