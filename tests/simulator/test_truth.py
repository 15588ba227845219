"""The truth: every person record once, with the record_id ingestion computes (docs/sources.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tessera.core.canonical import PERSON_COLUMNS, PERSON_SOURCE_TYPES
from tests.simulator.conftest import load_mapping, read_export

PERSON = {c.name for c in PERSON_COLUMNS}


def expected_record_ids(folder: Path, source: dict[str, Any]) -> pd.Series:
    """record_id of every row of an export by the rules of docs/sources.md, written independently of the simulator."""
    frame = read_export(folder, source)
    cols = source["columns"]

    def col(name: str) -> pd.Series:
        return (
            frame[cols[name]].str.strip()
            if name in cols and cols[name] in frame
            else pd.Series("", index=frame.index)
        )

    ref = col("customer_ref")
    has_person = np.logical_or.reduce(
        [col(c).ne("").to_numpy() for c in PERSON if c in cols] or [np.zeros(len(frame), bool)]
    )
    rid = pd.Series("", index=frame.index)
    rid = rid.mask(col("email").ne(""), "email:" + col("email").str.lower())
    rid = rid.mask(col("loyalty_number").ne(""), "card:" + col("loyalty_number"))
    if source["type"] == "support_tickets":
        rid = rid.mask(has_person, "ticket:" + col("ticket_id"))
    if source["type"] == "order_lines":
        rid = rid.mask(has_person, "order:" + col("order_id"))
    return rid.mask(ref.ne(""), ref)


def all_record_ids(folder: Path, mapping: str) -> pd.DataFrame:
    frames = []
    for source in load_mapping(folder / mapping):
        if source["type"] not in PERSON_SOURCE_TYPES:
            continue
        rid = expected_record_ids(folder, source)
        frames.append(pd.DataFrame({"source": source["name"], "record_id": rid[rid.ne("")]}))
    return pd.concat(frames).drop_duplicates()


def test_every_person_record_is_in_the_truth_exactly_once(out: Path, truth: pd.DataFrame) -> None:
    assert list(truth.columns) == ["source", "record_id", "person_id"]
    assert not truth.duplicated(["source", "record_id"]).any()
    found = all_record_ids(out, "sources_full.yaml")
    merged = found.merge(truth, on=["source", "record_id"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()


def test_initial_mapping_holds_only_initial_records(out: Path, truth: pd.DataFrame) -> None:
    initial = all_record_ids(out, "sources.yaml")
    assert not initial["source"].str.endswith("_later").any()
    assert len(initial) == (~truth["source"].str.endswith("_later")).sum()


def test_record_ids_follow_each_rule(truth: pd.DataFrame) -> None:
    by_source = {s: ids for s, ids in truth.groupby("source")["record_id"]}
    assert by_source["store_receipts"].str.startswith("card:").all()
    assert by_source["webshop_orders"].str.startswith("order:").any()
    assert by_source["webshop_orders"].str.fullmatch(r"\d{7}").any()  # account customer ids
    assert by_source["support_tickets"].str.startswith("ticket:").any()
    assert by_source["support_tickets"].str.fullmatch(r"\d{7}").any()  # the web-shop customer number
    assert by_source["email_events"].str.startswith("email:").any()
    assert by_source["email_events"].str.fullmatch(r"C\d{8}").any()  # the CRM contact id
    assert by_source["web_events"].str.fullmatch(r"\d{7}").all()


def test_truth_people_exist(truth: pd.DataFrame, persons: pd.DataFrame) -> None:
    assert set(truth["person_id"]) <= set(persons["person_id"])
    assert persons["person_id"].is_unique


def test_household_members_sharing_an_email_stay_different_people(
    out: Path, sources: dict[str, dict], truth: pd.DataFrame, persons: pd.DataFrame
) -> None:
    shared = persons[persons["email_shared_in_household"]]
    assert len(shared) >= 4
    assert (shared.groupby("email")["person_id"].nunique() == 2).all()
    assert (shared.groupby("email")["household_id"].nunique() == 1).all()
    # In the exports, one family address is used by records the truth gives to two people.
    web = read_export(out, sources["webshop_orders"])
    web["email_key"] = web["Email"].str.strip().str.lower()
    rows = web[web["email_key"].isin(shared["email"])]
    rid = np.where(rows["CustomerId"].ne(""), rows["CustomerId"], "order:" + rows["OrderNo"])
    who = pd.DataFrame({"email": rows["email_key"].to_numpy(), "record_id": rid}).merge(truth, on="record_id")
    assert (who.groupby("email")["person_id"].nunique() > 1).any()


def test_future_orders_are_after_as_of_and_stop_at_churn(
    out: Path, truth: pd.DataFrame, persons: pd.DataFrame
) -> None:
    future = pq.read_table(out / "truth" / "future_orders.parquet").to_pandas()
    as_of_end = pd.Timestamp("2026-01-01", tz="UTC")
    assert (future["ordered_at"] >= as_of_end).all()
    assert (future["ordered_at"] < as_of_end + pd.Timedelta(days=365)).all()
    assert set(future["channel"]) == {"online", "store"}
    sales = future[future["line_type"] == "sale"].merge(persons[["person_id", "churned_at"]], on="person_id")
    assert (sales["churned_at"].isna() | (sales["ordered_at"] < sales["churned_at"])).all()
    gone = persons[~persons["active_at_as_of"]]
    assert not sales["person_id"].isin(gone["person_id"]).any()
    # People nobody can identify (store only, no card) still buy: the truth has their purchases too.
    anonymous = set(persons["person_id"]) - set(truth["person_id"])
    assert anonymous & set(future["person_id"])


def test_persons_carry_latent_behaviour(persons: pd.DataFrame) -> None:
    assert set(persons["segment"]) == {"weekly", "regular", "occasional", "one_off"}
    weekly = persons[persons["segment"] == "weekly"]["purchase_rate_per_year"].median()
    one_off = persons[persons["segment"] == "one_off"]["purchase_rate_per_year"].median()
    assert weekly > 5 * one_off
    churned = persons["churned_at"].notna()
    assert set(persons.loc[churned, "churn_cause"]) <= {"natural", "low_satisfaction_ticket", "unsubscribed"}
    assert 0.2 < (~persons["active_at_as_of"]).mean() < 0.6
