"""The offline tables computed from the profile: change points, no future, no personal data (no Feast here)."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_store_fixtures import CONSENT_DEFAULTS, NOW, PII, new_workspace, t

from features.profile.snapshots import write_feature_tables
from features.store.config import offline_folder
from tessera.core.errors import InputError
from tessera.core.settings import Workspace


def _tables(workspace: Workspace, now=NOW) -> dict[str, pd.DataFrame]:
    write_feature_tables(workspace, now, CONSENT_DEFAULTS, offline_folder(workspace))
    return {p.stem: pd.read_parquet(p) for p in offline_folder(workspace).glob("*.parquet")}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """The tables of the hand-made profile as of NOW, computed once: the tests below only read them."""
    return _tables(new_workspace(tmp_path_factory.mktemp("tables")))


def _at(table: pd.DataFrame, key: str, moment: str, column: str = "customer_id") -> pd.Series:
    """The row Feast's point-in-time join picks: the latest at or before `moment`."""
    rows = table[(table[column] == key) & (table["event_timestamp"] <= t(moment))]
    return rows.sort_values("event_timestamp").iloc[-1]


def test_windows_count_purchases_until_they_leave_the_window(tables: dict[str, pd.DataFrame]) -> None:
    transactions = tables["customer_transactions"]
    # alice's first order (2025-01-10 10:00) leaves the 30-day window at 2025-02-09 10:00 exactly.
    assert _at(transactions, "alice", "2025-02-09 09:59")["orders_30d"] == 1
    assert _at(transactions, "alice", "2025-02-09 10:00")["orders_30d"] == 0
    assert _at(transactions, "alice", "2025-02-09 10:00")["orders_90d"] == 1
    after_return = _at(transactions, "alice", "2025-03-05 12:00")
    assert after_return["returned_value_365d"] == 10.0
    assert after_return["return_rate"] == pytest.approx(10 / 30)
    assert after_return["orders_lifetime"] == 2  # the cancelled order does not count
    assert after_return["online_order_share"] == 0.5
    assert after_return["distinct_categories_365d"] == 2  # Kitchen (twice) and Bath


def test_no_row_holds_an_event_after_its_timestamp(tables: dict[str, pd.DataFrame]) -> None:
    transactions = tables["customer_transactions"]
    bob = transactions[transactions["customer_id"] == "bob"]
    before = bob[bob["event_timestamp"] < t("2025-06-01 09:00")]
    assert before["orders_lifetime"].max() == 1
    assert (before["spend_lifetime"].dropna() == 5.0).all()
    assert _at(transactions, "bob", "2025-06-01 09:00")["spend_lifetime"] == 26.0


def test_profile_rows_follow_consent_and_birthdays(tables: dict[str, pd.DataFrame]) -> None:
    profile = tables["customer_profile"]
    assert bool(_at(profile, "alice", "2025-01-01")["consent_email"]) is True
    # A grant and a withdrawal at the same moment: the withdrawal wins.
    assert bool(_at(profile, "alice", "2025-03-01")["consent_email"]) is False
    assert _at(profile, "alice", "2025-05-31")["age_band"] == "25-34"
    assert _at(profile, "alice", "2025-06-01")["age_band"] == "35-44"
    assert (
        bool(_at(profile, "carol", "2025-07-01")["consent_personalisation"]) is True
    )  # the configured default


def test_engagement_counts_abandoned_carts_only_once_known(tables: dict[str, pd.DataFrame]) -> None:
    engagement = tables["customer_engagement"]
    # bob's cart of 2025-04-01 20:06 is known abandoned 24 hours later, counted from the next UTC midnight.
    assert _at(engagement, "bob", "2025-04-02 23:00")["abandoned_carts_30d"] == 0
    assert _at(engagement, "bob", "2025-04-03 00:00")["abandoned_carts_30d"] == 1
    # alice ordered within 24 hours of adding to her cart: not abandoned.
    assert engagement.loc[engagement["customer_id"] == "alice", "abandoned_carts_90d"].fillna(0).max() == 0


def test_every_customer_and_product_has_a_row_at_now_and_a_null_row_at_the_epoch(
    tables: dict[str, pd.DataFrame],
) -> None:
    transactions, popularity = tables["customer_transactions"], tables["product_popularity"]
    assert set(transactions.loc[transactions["event_timestamp"] == NOW, "customer_id"]) == {
        "alice",
        "bob",
        "carol",
    }
    assert set(popularity.loc[popularity["event_timestamp"] == NOW, "sku"]) == {"A", "B", "C"}
    epoch = transactions[transactions["event_timestamp"] == t("1970-01-01")]
    assert set(epoch["customer_id"]) == {"alice", "bob", "carol"}
    assert epoch.drop(columns=["customer_id", "event_timestamp"]).isna().all().all()
    assert transactions["event_timestamp"].max() == NOW


def test_anonymous_receipts_count_for_products_not_customers(tables: dict[str, pd.DataFrame]) -> None:
    assert _at(tables["product_popularity"], "A", "2025-06-03", column="sku")["units_sold_7d"] == 1.0
    assert _at(tables["product_popularity"], "A", "2025-06-03", column="sku")["last_sold_price"] == 9.0
    assert tables["customer_transactions"]["customer_id"].notna().all()


def test_tables_hold_no_names_emails_phones_or_addresses(tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        assert not {"first_name", "last_name", "email", "phone", "street", "birth_date"} & set(
            table.columns
        ), name
        for column in table.columns:
            if table[column].dtype == object:
                values = {v for v in table[column].dropna() if isinstance(v, str)}
                assert not values & PII, (name, column)


def test_order_lines_only_retailer_gets_defaulted_tables(tmp_path) -> None:
    tables = _tables(new_workspace(tmp_path, order_lines_only=True))
    engagement = tables["customer_engagement"]
    assert set(engagement["customer_id"]) == {"alice", "bob", "carol"}
    assert (engagement.drop(columns=["customer_id", "event_timestamp"]).fillna(0) == 0).all().all()
    assert tables["product_catalog"].empty and tables["product_offer"].empty
    assert (
        _at(tables["customer_transactions"], "alice", "2025-07-01")["distinct_categories_365d"] == 2
    )  # by SKU
    assert _at(tables["customer_profile"], "alice", "2025-07-01")["age_band"] == "unknown"


def test_orders_without_products_count_for_customers_and_make_no_product_rows(tmp_path) -> None:
    workspace = new_workspace(tmp_path, order_lines_only=True)
    path = workspace.profile / "orders.parquet"
    pd.read_parquet(path).assign(sku=None).to_parquet(path)
    tables = _tables(workspace)
    alice = _at(tables["customer_transactions"], "alice", "2025-07-01")
    figures = alice[["orders_lifetime", "spend_lifetime", "distinct_categories_365d"]].tolist()
    assert figures == [2, 30.0, 0]
    assert tables["product_popularity"].empty
    assert list(_at(tables["customer_realtime"], "alice", "2025-07-01")["last_order_skus"]) == []


def test_missing_customers_table_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="customers.parquet"):
        write_feature_tables(Workspace(tmp_path), NOW, CONSENT_DEFAULTS, offline_folder(Workspace(tmp_path)))


def test_rows_after_now_are_left_out(workspace: Workspace) -> None:
    transactions = _tables(workspace, now=t("2025-04-01").to_pydatetime())["customer_transactions"]
    assert transactions["event_timestamp"].max() == t("2025-04-01")
    assert _at(transactions, "bob", "2025-04-01")["orders_lifetime"] == 1
