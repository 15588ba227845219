"""The pure chunk transform: record ids by the documented rules, and the same columns and dtypes every chunk."""

from __future__ import annotations

import pandas as pd

from features.ingest import SourceConfig, canonicalise


def frame(rows: list[dict]) -> pd.DataFrame:
    raw = pd.DataFrame(rows, dtype="string[pyarrow]")
    raw.index = pd.RangeIndex(1, len(rows) + 1, name="source_row")
    return raw


ORDER_COLUMNS = {
    "order_id": "No",
    "customer_ref": "Cust",
    "ordered_at": "At",
    "sku": "Sku",
    "quantity": "Qty",
    "unit_price": "Price",
    "loyalty_number": "Card",
    "email": "Mail",
    "last_name": "Name",
}
ORDERS = SourceConfig(name="shop", type="order_lines", id_namespace="web", columns=ORDER_COLUMNS)
LINE = {
    "No": "O1",
    "Cust": "",
    "At": "2024-01-01",
    "Sku": "S",
    "Qty": "1",
    "Price": "2",
    "Card": "",
    "Mail": "",
    "Name": "",
}


def test_record_ids_follow_the_first_rule_that_applies() -> None:
    raw = frame(
        [
            {**LINE, "Cust": "C1", "Mail": "a@x.com", "Card": "L1"},  # 1. customer_ref
            {**LINE, "No": "O2", "Name": "Smith"},  # 2. a guest order with a person column
            {**LINE, "No": "O3", "Card": "L3"},  # 4. a card-only receipt
            {**LINE, "No": "O4"},  # 6. anonymous
        ]
    )
    rows, rejected, _ = canonicalise(raw, ORDERS)
    assert rejected.empty
    assert list(rows["record_id"].fillna("-")) == ["C1", "order:O2", "card:L3", "-"]
    assert list(rows["identity_key"].fillna("-")) == ["web:C1", "shop:order:O2", "shop:card:L3", "-"]
    assert list(rows["line_type"]) == ["sale"] * 4


def test_a_line_with_only_place_or_gender_is_anonymous() -> None:
    where = {"country": "Country", "city": "City", "postcode": "Zip", "gender": "Sex", "street": "Street"}
    source = SourceConfig(name="shop", type="order_lines", columns={**ORDER_COLUMNS, **where})
    blank = {**LINE, "Country": "", "City": "", "Zip": "", "Sex": "", "Street": ""}
    raw = frame(
        [
            {**blank, "No": "O1", "Country": "GB"},
            {**blank, "No": "O2", "City": "Leeds", "Zip": "LS1 4AP", "Sex": "F", "Street": "1 Park Row"},
            {**blank, "No": "O3", "Country": "GB", "Name": "Smith"},  # a name: a guest checkout
            {**blank, "No": "O4", "Country": "GB", "Mail": "a@x.com"},
        ]
    )
    rows, rejected, _ = canonicalise(raw, source)
    assert rejected.empty
    assert list(rows["record_id"].fillna("-")) == ["-", "-", "order:O3", "order:O4"]
    assert list(rows["identity_key"].fillna("-")) == ["-", "-", "shop:order:O3", "shop:order:O4"]


def test_tickets_and_emails_get_their_own_ids() -> None:
    tickets = SourceConfig(
        name="desk", type="support_tickets", columns={"ticket_id": "T", "created_at": "At", "email": "Mail"}
    )
    rows, _, _ = canonicalise(frame([{"T": "9", "At": "2024-01-01", "Mail": "A@X.com "}]), tickets)
    assert rows["record_id"].iloc[0] == "ticket:9"
    mails = SourceConfig(
        name="esp", type="email_events", columns={"occurred_at": "At", "event_type": "Ev", "email": "Mail"}
    )
    rows, _, _ = canonicalise(frame([{"At": "2024-01-01", "Ev": "Open", "Mail": " A@X.com"}]), mails)
    assert rows["record_id"].iloc[0] == "email:a@x.com"
    assert rows["identity_key"].iloc[0] == "esp:email:a@x.com"
    assert rows["event_type"].iloc[0] == "open"


def test_every_chunk_has_the_same_columns_and_dtypes() -> None:
    full, _, _ = canonicalise(frame([{**LINE, "Cust": "C1", "Extra": "x"}]), ORDERS, ["Extra"])
    sparse, _, _ = canonicalise(
        frame([{"No": "O9", "At": "2024-01-01", "Sku": "S", "Qty": "1", "Price": "2"}]), ORDERS, ["Extra"]
    )
    rejected_all, bad, _ = canonicalise(frame([{**LINE, "Price": "-1"}]), ORDERS, ["Extra"])
    assert list(full.columns) == list(sparse.columns) == list(rejected_all.columns)
    assert list(full.dtypes) == list(sparse.dtypes) == list(rejected_all.dtypes)
    assert full.columns[-1] == "x_Extra" and len(rejected_all) == 0 and len(bad) == 1


def test_only_a_consent_for_an_account_is_keyed() -> None:
    consents = SourceConfig(
        name="cmp",
        type="consents",
        id_namespace="web",
        columns={
            "identifier_type": "Kind",
            "identifier": "Id",
            "purpose": "P",
            "status": "S",
            "recorded_at": "At",
        },
    )
    raw = frame(
        [
            {"Kind": "customer_ref", "Id": "C7", "P": "email", "S": "granted", "At": "2024-01-01"},
            {"Kind": "email", "Id": "a@x.com", "P": "sms", "S": "withdrawn", "At": "2024-01-01"},
        ]
    )
    rows, _, _ = canonicalise(raw, consents)
    assert list(rows["record_id"].fillna("-")) == ["C7", "-"]
    assert list(rows["identity_key"].fillna("-")) == ["web:C7", "-"]


def test_ids_written_as_whole_numbers_with_a_point_are_the_whole_numbers() -> None:
    # A spreadsheet, or a float column with gaps, writes customer 13085 as "13085.0".
    raw = frame(
        [
            {**LINE, "No": "536365.0", "Cust": "13085.0", "Sku": "85123.00", "Card": "007.0"},
            {**LINE, "No": "C536379", "Cust": "13085", "Sku": "85123A"},
            {**LINE, "No": "O3", "Cust": "1.5", "Sku": "2.0x"},  # not whole numbers: as written
        ]
    )
    rows, rejected, _ = canonicalise(raw, ORDERS)
    assert rejected.empty
    assert list(rows["customer_ref"]) == ["13085", "13085", "1.5"]
    assert list(rows["identity_key"]) == ["web:13085", "web:13085", "web:1.5"]
    assert list(rows["order_id"]) == ["536365", "C536379", "O3"]
    assert list(rows["sku"]) == ["85123", "85123A", "2.0x"]
    assert rows["loyalty_number"].iloc[0] == "007"  # leading zeros kept


def test_a_float_id_column_and_a_text_one_name_the_same_customer() -> None:
    # Parquet and SQL columns keep their types: a float column's 13085.0 is written out as "13085.0" first.
    raw = pd.DataFrame({"Id": [13085.0, None, 7.0], "Mail": ["a@x.com", "b@x.com", None]})
    raw.index = pd.RangeIndex(1, 4, name="source_row")
    contacts = SourceConfig(
        name="crm", type="contacts", id_namespace="web", columns={"customer_ref": "Id", "email": "Mail"}
    )
    rows, rejected, _ = canonicalise(raw, contacts)
    assert list(rows["identity_key"]) == ["web:13085", "web:7"]
    assert len(rejected) == 1  # the row without its required id, as before


def test_phone_and_national_id_numbers_written_as_floats_keep_their_digits() -> None:
    raw = pd.DataFrame({"Id": ["1", "2"], "Tel": [1701234567.0, None], "Ssn": ["123456789.0", "123456789"]})
    raw.index = pd.RangeIndex(1, 3, name="source_row")
    columns = {"customer_ref": "Id", "phone": "Tel", "national_id": "Ssn"}
    rows, _, _ = canonicalise(raw, SourceConfig(name="crm", type="contacts", columns=columns))
    assert rows["phone"].iloc[0] == "1701234567"  # not 17012345670
    assert rows["national_id"].iloc[0] == rows["national_id"].iloc[1]  # one id, one hash
