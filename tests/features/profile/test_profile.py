"""The profile: golden record by survivorship, unified events, consent state, as of a moment."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pandas as pd
import pytest
from conftest import ts, write_canonical

from features.ingest import ingest_sources
from features.profile import build_profile
from features.profile.quality import quality_report
from features.profile.read import load_events
from tessera.core.settings import Settings, Workspace

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def built(workspace: Workspace) -> Workspace:
    build_profile(workspace, now=NOW, settings=Settings(workspace=workspace.root))
    return workspace


def customers(ws: Workspace) -> pd.DataFrame:
    return pd.read_parquet(ws.profile / "customers.parquet").set_index("customer_id")


def test_golden_record_follows_survivorship_rules(built: Workspace) -> None:
    robert = customers(built).loc["CUST1"]
    assert robert["first_name"] == "Robert"  # CRM outranks the web shop's "Bob" for names
    assert robert["street"] == "9 New Street"  # the most recent address wins: he moved
    assert (robert["postcode"], robert["city"]) == ("ZZ9 9ZZ", "Newtown")  # the address is taken whole
    assert robert["email"] == "rob.smith@example.com"
    assert robert["phone"] == "+447700900123"
    assert robert["n_source_records"] == 3
    assert list(robert["sources"]) == ["clicks", "crm", "webshop"]


def test_orders_keep_anonymous_lines_and_leave_out_the_future(built: Workspace) -> None:
    orders = pd.read_parquet(built.profile / "orders.parquet")
    assert sorted(orders["order_id"]) == ["O1", "O1", "R7"]  # O9 is after `now`
    assert orders.loc[orders["order_id"] == "R7", "customer_id"].isna().all()
    assert orders["amount"].sum() == pytest.approx(2 * 5 - 5 + 3)
    assert customers(built).loc["CUST1", "n_orders"] == 1


def test_a_device_seen_logged_in_is_attributed_when_logged_out(built: Workspace) -> None:
    web = pd.read_parquet(built.profile / "interactions.parquet").set_index("event_type")
    assert web.loc["search", "customer_id"] == "CUST1"
    assert web.loc["search", "identified_by"] == "device"
    assert pd.isna(web.loc["page_view", "customer_id"])


def test_consent_latest_record_wins_and_defaults_are_flagged(built: Workspace) -> None:
    table = customers(built)
    robert, alice = table.loc["CUST1"], table.loc["CUST2"]
    assert not robert["consent_email"] and robert["consent_email_recorded"]  # granted, then withdrawn
    assert not robert["consent_personalisation"]  # withdrawn for his web-shop account
    assert robert["consent_sms"]  # given for his phone number, written in another format
    assert alice["consent_profiling"] and not alice["consent_profiling_recorded"]  # the default
    assert not alice["consent_email"]  # marketing needs an opt-in


def test_quality_report_accounts_for_tables_and_match_rates(built: Workspace) -> None:
    report = quality_report(built, now=NOW)
    assert report["tables"]["order_lines"]["rows"] == 4
    assert report["identity"]["customers"] == 2
    assert report["match_rates"]["orders_with_customer"] == pytest.approx(2 / 3, abs=1e-3)
    assert (built.reports / "quality.md").read_text().startswith("# Data quality")


def test_survivorship_rules_are_configurable(workspace: Workspace, tmp_path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n  name: {fields: [first_name, last_name], strategy: source_priority, order: [order_lines]}\n"
    )
    build_profile(workspace, now=NOW, settings=Settings(workspace=workspace.root, survivorship_rules=rules))
    assert customers(workspace).loc["CUST1", "first_name"] == "Bob"  # the web shop now wins names


def test_quality_report_shows_the_optional_values_ingestion_blanked(tmp_path) -> None:
    (tmp_path / "contacts.csv").write_text(
        "Id,DOB\nC1,1980-05-17\nC2,1975-02-31\nC3,soon\n", encoding="utf-8"
    )
    (tmp_path / "sources.yaml").write_text(
        "version: 1\nsources:\n  - {name: crm, type: contacts, path: contacts.csv,"
        " columns: {customer_ref: Id, birth_date: DOB}}\n",
        encoding="utf-8",
    )
    workspace = Workspace(tmp_path / "fresh")
    ingest_sources(tmp_path / "sources.yaml", workspace, Settings())

    report = quality_report(workspace, now=NOW)
    assert report["blanked"]["crm"]["DOB"]["values"] == 2
    assert report["blanked"]["crm"]["DOB"]["reasons"] == {"unparseable date": 2}
    assert report["tables"]["contacts"]["rows"] == 3
    markdown = (workspace.reports / "quality.md").read_text()
    assert "## Blanked values" in markdown
    assert "- **crm**: DOB 2 (unparseable date)" in markdown


def test_support_tickets_as_the_only_interactions_keep_the_event_columns(workspace: Workspace) -> None:
    """A retailer with tickets but no web or email events (a marketplace's reviews): the unified interactions
    take their column names from whichever channel comes first, so the service part names every one."""
    shutil.rmtree(workspace.canonical_table("web_events"))
    ticket = {"record_id": "T1", "identity_key": "crm:C1", "customer_ref": "C1", "ticket_id": "T1"}
    write_canonical(
        workspace,
        "support_tickets",
        "reviews",
        [{**ticket, "created_at": ts("2024-04-02"), "satisfaction": 2.0}],
    )
    build_profile(workspace, now=NOW, settings=Settings(workspace=workspace.root))

    interactions = pd.read_parquet(workspace.profile / "interactions.parquet")
    assert list(
        interactions[["customer_id", "channel", "event_type"]].itertuples(index=False, name=None)
    ) == [("CUST1", "service", "ticket")]
    assert interactions["occurred_at"].iloc[0] == ts("2024-04-02")
    assert interactions["identified_by"].iloc[0] == "requester"
    # The recommender's signals read the interactions by these names: purchases only here.
    assert set(load_events(workspace, NOW)["kind"]) == {"purchase"}
