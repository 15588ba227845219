"""Tiny canonical tables and a crosswalk, written the way ingestion and identity resolution write them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tessera.core.canonical import META_COLUMNS, SOURCE_TYPES
from tessera.core.settings import Workspace

_DTYPES = {
    "string": "string",
    "timestamp": "datetime64[us, UTC]",
    "date": "object",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}


def canonical_frame(source_type: str, rows: list[dict]) -> pd.DataFrame:
    """A frame with every canonical column of the type (null where a row does not say)."""
    columns = [*META_COLUMNS, *SOURCE_TYPES[source_type]]
    frame = pd.DataFrame(
        {c.name: pd.Series([r.get(c.name) for r in rows], dtype=_DTYPES[c.kind]) for c in columns}
    )
    frame["source_row"] = range(1, len(rows) + 1)
    return frame


def write_canonical(workspace: Workspace, source_type: str, source: str, rows: list[dict]) -> None:
    path = workspace.canonical_file(source_type, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    canonical_frame(source_type, [{"source": source, **r} for r in rows]).to_parquet(path)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """Two people: Robert (CRM contact C1 and web-shop account W1) and Alice (CRM contact C2)."""
    ws = Workspace(tmp_path)
    write_canonical(
        ws,
        "contacts",
        "crm",
        [
            {
                "record_id": "C1",
                "identity_key": "crm:C1",
                "customer_ref": "C1",
                "first_name": "Robert",
                "last_name": "Smith",
                "email": " Rob.Smith@Example.COM ",
                "phone": "07700 900123",
                "street": "1 Old Road",
                "postcode": "AB1 2CD",
                "city": "Oldtown",
                "created_at": ts("2023-01-01"),
            },
            {
                "record_id": "C2",
                "identity_key": "crm:C2",
                "customer_ref": "C2",
                "first_name": "Alice",
                "last_name": "Jones",
                "email": "alice@example.com",
                "created_at": ts("2023-02-01"),
            },
        ],
    )
    write_canonical(
        ws,
        "order_lines",
        "webshop",
        [
            {
                "record_id": "W1",
                "identity_key": "webshop:W1",
                "customer_ref": "W1",
                "order_id": "O1",
                "ordered_at": ts("2024-03-01"),
                "sku": "A",
                "quantity": 2.0,
                "unit_price": 5.0,
                "channel": "online",
                "line_type": "sale",
                "first_name": "Bob",
                "last_name": "Smith",
                "street": "9 New Street",
                "postcode": "ZZ9 9ZZ",
                "city": "Newtown",
            },
            {
                "record_id": "W1",
                "identity_key": "webshop:W1",
                "customer_ref": "W1",
                "order_id": "O1",
                "ordered_at": ts("2024-06-01"),
                "sku": "A",
                "quantity": -1.0,
                "unit_price": 5.0,
                "channel": "online",
                "line_type": "return",
            },
            {
                "order_id": "R7",
                "ordered_at": ts("2024-04-01"),
                "sku": "B",
                "quantity": 1.0,
                "unit_price": 3.0,
                "channel": "store",
                "line_type": "sale",
            },
            {
                "record_id": "W1",
                "identity_key": "webshop:W1",
                "customer_ref": "W1",
                "order_id": "O9",
                "ordered_at": ts("2030-01-01"),
                "sku": "C",
                "quantity": 1.0,
                "unit_price": 1.0,
                "channel": "online",
                "line_type": "sale",
            },
        ],
    )
    write_canonical(
        ws,
        "web_events",
        "clicks",
        [
            {
                "record_id": "W1",
                "identity_key": "webshop:W1",
                "customer_ref": "W1",
                "anonymous_id": "dev1",
                "occurred_at": ts("2024-03-01"),
                "event_type": "product_view",
                "sku": "A",
            },
            {
                "anonymous_id": "dev1",
                "occurred_at": ts("2024-03-05"),
                "event_type": "search",
                "search_query": "tea",
            },
            {"anonymous_id": "dev2", "occurred_at": ts("2024-03-05"), "event_type": "page_view"},
        ],
    )
    write_canonical(
        ws,
        "consents",
        "consent_platform",
        [
            {
                "identifier_type": "email",
                "identifier": "ROB.SMITH@example.com",
                "purpose": "email",
                "status": "granted",
                "recorded_at": ts("2024-01-01"),
            },
            {
                "identifier_type": "email",
                "identifier": "rob.smith@example.com",
                "purpose": "email",
                "status": "withdrawn",
                "recorded_at": ts("2024-02-01"),
            },
            {
                "identifier_type": "customer_ref",
                "identifier": "W1",
                "identity_key": "webshop:W1",
                "record_id": "W1",
                "purpose": "personalisation",
                "status": "withdrawn",
                "recorded_at": ts("2024-02-01"),
            },
            {
                "identifier_type": "phone",
                "identifier": "+44 7700 900123",
                "purpose": "sms",
                "status": "granted",
                "recorded_at": ts("2024-02-01"),
            },
        ],
    )
    ws.identity.mkdir(parents=True)
    pd.DataFrame(
        {
            "source": ["crm", "webshop", "clicks", "crm"],
            "record_id": ["C1", "W1", "W1", "C2"],
            "identity_key": ["crm:C1", "webshop:W1", "webshop:W1", "crm:C2"],
            "customer_id": ["CUST1", "CUST1", "CUST1", "CUST2"],
        }
    ).to_parquet(ws.identity / "crosswalk.parquet")
    return ws
