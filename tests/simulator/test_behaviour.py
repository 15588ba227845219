"""Behaviour the later models should find: BG/NBD-like buying, seasonality, habits, and churn signals."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.behaviour import NEVER, Season, engagement, purchase_times
from simulator.catalogue import build_catalogue
from simulator.chunk import Chunk, Counters, simulate_chunk
from simulator.config import DAY, Clock, SimConfig
from simulator.people import EmailBook, tables
from tests.simulator.conftest import read_export

CONFIG = SimConfig()
CLOCK = Clock.for_as_of(date(2025, 12, 31), CONFIG)


@pytest.fixture(scope="module")
def chunk() -> Chunk:
    """3,000 people simulated in memory, for statistics the 500-person files are too small for."""
    season = Season.build(CLOCK)
    catalogue = build_catalogue(3, CLOCK, CONFIG, len(tables().towns))
    return simulate_chunk(3, 0, 3000, 0, 0, CLOCK, season, CONFIG, catalogue, EmailBook(), Counters(), 0.0)


def test_engagement_fades_before_inactivity() -> None:
    death = np.full(4, 1_000 * DAY)
    t = death - np.array([400, 60, 1, -10]) * DAY
    level = engagement(t, death, CONFIG)
    assert level[0] == 1.0 and level[0] > level[1] > level[2]
    assert level[3] == CONFIG.after_churn_activity


def test_december_peak_and_summer_dip() -> None:
    season = Season.build(CLOCK)
    days = pd.date_range(pd.Timestamp(CLOCK.start, unit="s"), periods=len(season.factor), freq="D")
    by_month = pd.Series(season.factor).groupby(days.month).mean()
    assert by_month[12] > 1.2 * by_month[7]
    assert abs(season.factor.mean() - 1) < 1e-9


def test_dropout_after_each_purchase() -> None:
    season = Season.build(CLOCK)
    latent = pd.DataFrame({"joined": [CLOCK.start] * 2, "rate": [1 / 7] * 2, "dropout": [1e-9, 0.999999]})
    rng = np.random.default_rng(0)
    person, _, death = purchase_times(rng, latent, CLOCK, season)
    counts = np.bincount(person, minlength=2)
    years = (CLOCK.horizon - CLOCK.start) / (365 * DAY)
    assert 0.8 * 52 * years < counts[0] < 1.2 * 52 * years and death[0] == NEVER
    assert counts[1] == 1 and death[1] < NEVER


def test_returns_and_cancellations_at_their_rates(out: Path, sources: dict[str, dict]) -> None:
    web = read_export(out, sources["webshop_orders"])
    qty = web["Qty"].astype(int)
    assert 0.03 < (qty < 0).sum() / (qty > 0).sum() < 0.08  # ~5% of online lines come back
    orders = web[qty > 0].drop_duplicates("OrderNo")
    cancelled = orders["Status"].str.lower().eq("cancelled").mean()
    assert 0.005 < cancelled < 0.04  # ~2% of web orders


def test_people_buy_their_habitual_items_again(chunk: Chunk) -> None:
    orders, lines = chunk.life.orders, chunk.lines
    person = orders["person"].to_numpy()[lines["order"].to_numpy()]
    future = orders["t"].to_numpy()[lines["order"].to_numpy()] > CLOCK.end
    seen = set(zip(person[~future], lines["product"].to_numpy()[~future], strict=True))
    again = [(p, k) in seen for p, k in zip(person[future], lines["product"].to_numpy()[future], strict=True)]
    assert np.mean(again) > 0.5


def test_email_opens_fade_before_people_leave(chunk: Chunk) -> None:
    mail, death = chunk.mail, chunk.life.members["death"].to_numpy()
    d = death[mail["person"].to_numpy()]
    days_left = (d - mail["t"].to_numpy()) / DAY
    sent = mail["type"].to_numpy() == 0
    opened = mail["type"].to_numpy() == 1
    late = (days_left > 0) & (days_left < 60)
    normal = d == NEVER
    assert opened[late].sum() / sent[late].sum() < 0.6 * opened[normal].sum() / sent[normal].sum()


def test_bad_tickets_and_unsubscribes_come_before_leaving(chunk: Chunk) -> None:
    members = chunk.life.members
    cause = members["cause"].to_numpy()
    assert (cause == 2).sum() > 10 and (cause == 3).sum() > 10  # bad-ticket and unsubscribe churn both happen
    tickets = chunk.life.tickets
    low = tickets["rated"] & (tickets["satisfaction"] <= 2)
    high = tickets["rated"] & (tickets["satisfaction"] >= 4)
    death = members["death"].to_numpy()[tickets["person"].to_numpy()]
    soon = (death - tickets["created"].to_numpy()) < 90 * DAY
    assert soon[low.to_numpy()].mean() > 1.5 * soon[high.to_numpy()].mean()


def test_web_visits_fade_before_people_leave(chunk: Chunk) -> None:
    sessions = chunk.sessions[chunk.sessions["kind"] == 0]
    death = chunk.life.members["death"].to_numpy()
    joined = chunk.latent["joined"].to_numpy()
    left = np.flatnonzero((death < CLOCK.end) & (joined < death - 400 * DAY))
    s = sessions[np.isin(sessions["person"].to_numpy(), left)]
    days_left = (death[s["person"].to_numpy()] - s["start"].to_numpy()) / DAY
    last_months = ((days_left > 0) & (days_left <= 60)).sum() / 60
    before = ((days_left > 180) & (days_left <= 360)).sum() / 180
    assert last_months < 0.7 * before
