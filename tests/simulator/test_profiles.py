"""The `hard` profile: wholesale buyers, heavy-tailed baskets, strong repeat buying, 9 months, anonymous lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from simulator import simulate_retailer
from simulator.behaviour import Season
from simulator.catalogue import build_catalogue
from simulator.chunk import Chunk, Counters, simulate_chunk
from simulator.config import Clock, SimConfig, profile_config
from simulator.people import EmailBook, tables
from tests.simulator.conftest import load_mapping, read_export

AS_OF = date(2025, 12, 31)


def simulated(config: SimConfig, people: int = 2000, seed: int = 5) -> Chunk:
    """One chunk of people simulated in memory with `config`."""
    clock = Clock.for_as_of(AS_OF, config)
    catalogue = build_catalogue(seed, clock, config, len(tables().towns))
    season = Season.build(clock)
    return simulate_chunk(
        seed, 0, people, 0, 0, clock, season, config, catalogue, EmailBook(), Counters(), 0.0
    )


@pytest.fixture(scope="module")
def hard() -> Chunk:
    return simulated(profile_config("hard"))


@pytest.fixture(scope="module")
def hard_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hard")
    simulate_retailer(customers=800, seed=7, out=out, config=profile_config("hard"))
    return out


def per_order(chunk: Chunk) -> pd.DataFrame:
    """Lines, units and spend per order, and whether a wholesale buyer placed it."""
    lines, orders = chunk.lines, chunk.life.orders
    spend = (lines["quantity"] * lines["price_pence"]).groupby(lines["order"]).sum()
    frame = pd.DataFrame(
        {
            "lines": lines.groupby("order").size(),
            "units": lines.groupby("order")["quantity"].sum(),
            "spend": spend,
        }
    )
    person = orders["person"].to_numpy()[frame.index]
    return frame.assign(person=person, wholesale=chunk.latent["wholesale"].to_numpy()[person])


def rebuy_share(chunk: Chunk) -> float:
    """Share of the lines of people's later orders whose product they bought in an earlier order."""
    lines = chunk.lines
    person = chunk.life.orders["person"].to_numpy()[lines["order"].to_numpy()]
    frame = pd.DataFrame({"person": person, "order": lines["order"], "product": lines["product"]})
    first_bought = frame.groupby(["person", "product"])["order"].transform("min")
    later = frame["order"] > frame.groupby("person")["order"].transform("min")
    return float((frame["order"][later] > first_bought[later]).mean())


def test_the_default_profile_is_the_documented_configuration() -> None:
    assert profile_config() == SimConfig()
    assert profile_config("default", months=9).history_days == 274
    with pytest.raises(ValueError, match="unknown simulator profile 'harder'"):
        profile_config("harder")


def test_wholesale_buyers_are_few_with_huge_baskets_and_spend(hard: Chunk) -> None:
    orders = per_order(hard)
    buyers = orders.groupby("person")["wholesale"].first()
    revenue = orders.groupby("person")["spend"].sum()
    assert 0 < buyers.mean() < 0.02  # a handful of trade accounts...
    assert revenue[buyers].sum() / revenue.sum() > 0.2  # ...carrying a large part of the revenue
    trade, rest = orders[orders["wholesale"]], orders[~orders["wholesale"]]
    assert trade["lines"].median() > 2 * rest["lines"].median()
    assert trade["units"].median() > 10 * rest["units"].median()
    assert trade["spend"].median() > 10 * rest["spend"].median()


def test_basket_sizes_have_a_heavy_tail(hard: Chunk) -> None:
    size = per_order(hard).query("~wholesale")["lines"]
    default = per_order(simulated(SimConfig(), people=1000))["lines"]
    assert size.quantile(0.99) >= 3 * size.median()
    assert size.max() >= 40 > default.max()
    assert (size >= 20).mean() > 0.005


def test_people_rebuy_their_own_items_more_than_without_the_repeat_strength(hard: Chunk) -> None:
    weak = simulated(replace(profile_config("hard"), repeat_strength=0.0))
    assert rebuy_share(hard) > rebuy_share(weak) + 0.03
    assert rebuy_share(hard) > 0.75


def test_nine_months_of_history_in_the_exports(hard_files: Path) -> None:
    sources = {s["name"]: s for s in load_mapping(hard_files / "sources.yaml")}
    web = read_export(hard_files, sources["webshop_orders"])
    ordered = pd.to_datetime(web["OrderDate"], format="%Y-%m-%dT%H:%M:%SZ")
    first_day = pd.Timestamp(AS_OF - timedelta(days=273))
    assert ordered.min() >= first_day and ordered.max() < pd.Timestamp(AS_OF + timedelta(days=1))
    assert ordered.min() < first_day + pd.Timedelta(days=14)  # and the history does start there


def test_a_third_of_order_lines_are_anonymous(hard_files: Path) -> None:
    sources = {s["name"]: s for s in load_mapping(hard_files / "sources.yaml")}
    web = read_export(hard_files, sources["webshop_orders"])
    store = read_export(hard_files, sources["store_receipts"])
    anonymous = (store["CardNo"] == "").sum()  # web lines always carry an account or the guest's details
    assert (web["CustomerId"] != "").any() and (
        (web["CustomerId"] != "") | (web["BillingLastName"] != "")
    ).all()
    assert 0.28 < anonymous / (len(web) + len(store)) < 0.40
