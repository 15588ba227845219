"""BG/NBD and Gamma-Gamma against the published CDNOW values (Fader, Hardie & Lee 2005).

The CDNOW 1/10 sample (2,357 customers, whitespace-separated, no header) comes with the `lifetimes` package,
used here only as a carrier of the file. Calibration: 39 weeks from 1997-01-01 (observed up to the end of
1997-09-30), time in weeks, a transaction is a day with purchases.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.store.settings import FeatureStoreSettings
from tessera.core.settings import Settings, Workspace
from training.labels import order_events, sales
from training.probabilistic import (
    PENALIZER,
    RUNAWAY,
    BetaGeoFitter,
    GammaGammaFitter,
    MeanSpend,
    ProbabilisticCLV,
    ProbabilisticFeatures,
    fit_spend,
    fitted_where_scored,
    forget_own_fits,
    rfm_summary,
    unless_runaway,
)

PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CALIBRATION_END = datetime(1997, 9, 30, 23, 59, 59, 999999, tzinfo=UTC)


def cdnow_file() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "the lifetimes package (the CDNOW file's carrier, a locked dev dependency) is missing: `uv sync`"
        )
    return Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_sample.txt"


def assert_within_one_percent(fitted: dict[str, float], published: dict[str, float]) -> None:
    for name, value in published.items():
        assert fitted[name] == pytest.approx(value, rel=0.01), (
            f"{name}: {fitted[name]:.4f} vs published {value}"
        )


def test_bgnbd_and_gamma_gamma_recover_the_published_cdnow_parameters() -> None:
    # The estimators' own check, on the file read directly; the test below feeds it through ingestion.
    raw = pd.read_csv(
        cdnow_file(), sep=r"\s+", header=None, names=["master", "sample", "date", "cds", "dollars"]
    )
    orders = pd.DataFrame(
        {
            "customer_id": raw["master"].astype(str),
            "ordered_at": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d", utc=True),
            "amount": raw["dollars"],
        }
    )
    summary = rfm_summary(orders, CALIBRATION_END, unit_days=7)
    assert len(summary) == 2357
    assert_within_one_percent(BetaGeoFitter().fit(summary).params_, PUBLISHED_BGNBD)
    assert_within_one_percent(GammaGammaFitter().fit(summary).params_, PUBLISHED_GAMMA_GAMMA)


CDNOW_MAPPING = """version: 1
sources:
  - name: cdnow
    type: order_lines
    path: {path}
    format: csv
    # The export has no header and separates fields by runs of spaces (leading ones too).
    header: false
    column_names: [master_id, sample_id, date, cds, dollars]
    delimiter: whitespace
    date_formats: ["%Y%m%d"]
    # One line is a customer's purchases of one day: the day is the order, the dollars its value.
    columns: {{customer_ref: master_id, order_id: date, ordered_at: date, unit_price: dollars}}
    constants: {{sku: CD, quantity: "1", channel: online, currency: USD}}
"""


@pytest.mark.integration
def test_cdnow_through_tesseras_own_ingestion_gives_the_published_parameters(tmp_path: Path) -> None:
    from tessera.pipeline import run_chain

    (tmp_path / "sources.yaml").write_text(CDNOW_MAPPING.format(path=cdnow_file()))
    workspace = Workspace(tmp_path / "ws")
    run_chain(
        tmp_path / "sources.yaml",
        workspace,
        CALIBRATION_END,
        Settings(workspace=workspace.root),
        FeatureStoreSettings(),
    )
    lines = pd.read_parquet(workspace.profile / "orders.parquet")
    summary = rfm_summary(sales(order_events(lines)), CALIBRATION_END, unit_days=7)
    assert len(summary) == 2357
    assert_within_one_percent(BetaGeoFitter().fit(summary).params_, PUBLISHED_BGNBD)
    assert_within_one_percent(GammaGammaFitter().fit(summary).params_, PUBLISHED_GAMMA_GAMMA)


def test_rfm_summary_counts_purchase_days_and_repeat_spend() -> None:
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "ordered_at": pd.to_datetime(
                ["2025-01-01 09:00", "2025-01-01 17:00", "2025-01-15", "2025-01-08"],
                utc=True,
                format="ISO8601",
            ),
            "amount": [10.0, 5.0, 30.0, 8.0],
        }
    )
    summary = rfm_summary(orders, pd.Timestamp("2025-01-28 23:59", tz="UTC"), unit_days=7)
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary"]) == (1, 2, 27 / 7, 30.0)
    assert (b["frequency"], b["T"], b["monetary"]) == (0, 20 / 7, 0.0)


def test_a_customer_buying_every_week_is_alive_and_expected_to_buy_more_than_a_lapsed_one() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for c in range(300):  # a population with varied rhythms, so the fit is identified
        gap = rng.choice([7, 30, 120])
        stop = rng.integers(60, 700)
        rows += [
            (f"c{c}", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=int(d)), 20.0)
            for d in range(0, stop, gap)
        ]
    rows += [
        ("weekly", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(weeks=w), 20.0) for w in range(104)
    ]
    rows += [
        ("lapsed", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(weeks=w), 20.0) for w in range(10)
    ]
    orders = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])
    cutoff = pd.Timestamp("2025-12-31", tz="UTC")
    predicted = ProbabilisticCLV().fit(orders, cutoff).predict(orders, cutoff, horizon_days=90)
    assert predicted.loc["weekly", "p_alive"] > 0.9 > predicted.loc["lapsed", "p_alive"]
    assert predicted.loc["weekly", "expected_purchases"] > 5 * predicted.loc["lapsed", "expected_purchases"]
    assert predicted.loc["weekly", "expected_value"] > predicted.loc["lapsed", "expected_value"]


def test_without_enough_repeat_spend_the_spend_model_is_each_buyers_own_mean_not_gamma_gamma() -> None:
    # Two repeat buyers with positive spend: too few for Gamma-Gamma's three parameters.
    summary = pd.DataFrame(
        {"frequency": [2.0, 1.0, 0.0, 3.0], "recency": [5.0, 3.0, 0.0, 8.0], "T": [10.0] * 4,
         "monetary": [20.0, 40.0, 0.0, 0.0]}
    )  # fmt: skip
    with pytest.raises(ValueError, match="repeat buyers with positive spend"):
        GammaGammaFitter().fit(summary)
    spend = fit_spend(summary, penalizer=0.0)
    assert isinstance(spend, MeanSpend)
    # Repeat buyers keep their own mean; the one-off and the zero-spend repeat buyer take the mean over them.
    assert spend.expected_average_value(summary).tolist() == [20.0, 40.0, 30.0, 30.0]
    nobody = summary.assign(monetary=0.0)
    assert fit_spend(nobody, penalizer=0.0).expected_average_value(nobody).tolist() == [0.0] * 4
    enough = pd.concat([summary.assign(monetary=[20.0, 40.0, 0.0, 25.0])] * 3, ignore_index=True)
    assert isinstance(fit_spend(enough, penalizer=0.0), GammaGammaFitter)


def test_the_textbook_fit_is_unpenalised_unless_it_runs_away() -> None:
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 52, 2000)
    steady = pd.DataFrame(  # everyone buys every four weeks, for 20 a time: rates and spend hardly vary
        {"frequency": np.floor(T / 4), "recency": T - rng.uniform(0, 4, 2000), "T": T}
    ).assign(monetary=20 + rng.normal(0, 0.01, 2000))
    assert BetaGeoFitter(0.0).fit(steady).r_ > RUNAWAY  # unpenalised, r grows without bound
    fitted = unless_runaway(lambda p: BetaGeoFitter(p).fit(steady), None)
    assert fitted.params_ == pytest.approx(BetaGeoFitter(PENALIZER).fit(steady).params_)
    spend = unless_runaway(lambda p: fit_spend(steady, p), None)
    assert spend.params_ == pytest.approx(fit_spend(steady, PENALIZER).params_)
    varied = steady.assign(frequency=rng.poisson(T / rng.gamma(1.0, 8.0, 2000)).clip(max=T))
    varied["monetary"] = np.where(varied["frequency"] > 0, rng.gamma(2.0, 15.0, 2000), 0.0)
    assert unless_runaway(lambda p: BetaGeoFitter(p).fit(varied), None).params_ == pytest.approx(
        BetaGeoFitter(0.0).fit(varied).params_
    )
    assert unless_runaway(lambda p: fit_spend(varied, p), None).params_ == pytest.approx(
        fit_spend(varied, 0.0).params_
    )
    assert unless_runaway(lambda p: BetaGeoFitter(p).fit(varied), 0.5).penalizer == 0.5


def _vectors(rng: np.random.Generator, n: int, cutoff: str) -> pd.DataFrame:
    tenure = rng.uniform(30, 700, n)
    orders = rng.poisson(tenure / rng.gamma(1.0, 60.0, n)) + 1
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "cutoff": pd.Timestamp(cutoff, tz="UTC"),
            "orders_lifetime": orders,
            "spend_lifetime": orders * rng.gamma(2.0, 20.0, n),
            "tenure_days": tenure,
            "days_since_last_order": tenure * rng.uniform(0, 1, n) ** 2,
        }
    )


def test_a_cutoffs_own_fit_is_made_once_and_scores_as_a_fresh_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    frame = pd.concat([_vectors(rng, 400, "2024-03-01"), _vectors(rng, 400, "2024-06-01")], ignore_index=True)
    served = ProbabilisticFeatures(90).fit(frame)
    latest = frame["cutoff"] == frame["cutoff"].max()
    expected = ProbabilisticFeatures(90, penalizer=None).fit(frame[latest]).transform(frame[latest])
    fits = []
    fit = ProbabilisticFeatures.fit
    monkeypatch.setattr(
        ProbabilisticFeatures, "fit", lambda self, rows: fits.append(len(rows)) or fit(self, rows)
    )
    first = fitted_where_scored(frame, 90, served)
    assert fits == [400, 400]  # one fit per cutoff
    again = fitted_where_scored(frame.copy(), 90, served)  # another frame, the same rows
    assert fits == [400, 400]  # none more: the same summaries
    pd.testing.assert_frame_equal(again, first)
    pd.testing.assert_frame_equal(first[latest], expected)
    fitted_where_scored(frame, 30, served)  # another horizon is another fit
    changed = frame.assign(spend_lifetime=frame["spend_lifetime"] + 1)
    fitted_where_scored(changed, 90, served)  # other vectors are other fits
    assert len(fits) == 6
    forget_own_fits()  # what a training run does as it ends
    fitted_where_scored(frame, 90, served)
    assert len(fits) == 8
