"""The sources.yaml the simulated retailer ships with its exports (the format is docs/sources.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

HEADER = """\
# The simulated retailer's source systems, declared for `tessera ingest` (see docs/sources.md).
# Written by `tessera simulate`; paths are relative to this file.
"""

EXPORTS: dict[str, dict[str, Any]] = {
    "webshop_orders": {
        "type": "order_lines",
        "file": "webshop_orders.csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "id_namespace": "webshop",
        "columns": {
            "order_id": "OrderNo", "line_no": "LineNo", "customer_ref": "CustomerId", "ordered_at": "OrderDate",
            "sku": "ArticleNo", "product_name": "Description", "quantity": "Qty", "unit_price": "UnitPrice",
            "currency": "Currency", "first_name": "BillingFirstName", "last_name": "BillingLastName",
            "email": "Email", "phone": "Phone", "street": "ShipStreet", "postcode": "ShipPostcode",
            "city": "ShipTown", "country": "ShipCountry",
        },
        "constants": {"channel": "online"},
        "returns": {"by": "negative_quantity"},
        "cancellations": {"by": "flag", "column": "Status", "values": ["CANCELLED", "Cancelled"]},
    },
    "store_receipts": {
        "type": "order_lines",
        "file": "store_receipts.csv",
        "format": "csv",
        "encoding": "latin-1",
        "delimiter": ";",
        "decimal": ",",
        "timezone": "Europe/London",
        "date_formats": ["%d/%m/%Y %H:%M"],
        "columns": {
            "order_id": "ReceiptNo", "ordered_at": "Date", "sku": "ArticleNo", "product_name": "ArticleText",
            "quantity": "Qty", "unit_price": "Price", "store_id": "StoreNo", "loyalty_number": "CardNo",
        },
        "constants": {"channel": "store", "currency": "GBP"},
        "returns": {"by": "id_prefix", "column": "order_id", "prefix": "RT"},
    },
    "crm_contacts": {
        "type": "contacts",
        "file": "crm_contacts.csv",
        "format": "csv",
        "encoding": "utf-8-sig",
        "delimiter": ",",
        "date_formats": ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y"],
        "id_namespace": "crm",
        "columns": {
            "customer_ref": "ContactId", "first_name": "FirstName", "last_name": "LastName", "email": "Email",
            "phone": "Mobile", "street": "AddressLine1", "postcode": "Postcode", "city": "Town",
            "country": "Country", "birth_date": "DateOfBirth", "gender": "Gender", "created_at": "CreatedDate",
            "updated_at": "LastModifiedDate",
        },
    },
    "loyalty_members": {
        "type": "loyalty_members",
        "file": "loyalty_members.parquet",
        "format": "parquet",
        "id_namespace": "loyalty",
        "columns": {
            "customer_ref": "member_id", "loyalty_number": "card_number", "tier": "tier", "points": "points",
            "joined_at": "joined", "first_name": "forename", "last_name": "surname", "email": "email_address",
            "phone": "mobile_no", "street": "house_street", "postcode": "post_code", "city": "town",
            "birth_date": "dob", "gender": "gender",
        },
    },
    "web_events": {
        "type": "web_events",
        "file": "web_events.jsonl",
        "format": "jsonl",
        "id_namespace": "webshop",
        "columns": {
            "event_id": "event_id", "occurred_at": "ts", "event_type": "type", "session_id": "session.id",
            "anonymous_id": "session.anonymous_id", "customer_ref": "user.customer_id", "sku": "props.sku",
            "search_query": "props.query", "page_url": "page.url",
        },
        "values": {
            "event_type": {"pv": "page_view", "pdp": "product_view", "search": "search", "atc": "add_to_cart",
                           "rfc": "remove_from_cart", "chk": "checkout_start"},
        },
    },
    "email_events": {
        "type": "email_events",
        "file": "email_events.csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "date_formats": ["%m/%d/%Y %I:%M:%S %p"],
        "id_namespace": "crm",
        "columns": {
            "customer_ref": "SubscriberKey", "email": "EmailAddress", "event_type": "EventType",
            "occurred_at": "EventDate", "campaign_id": "CampaignID",
        },
        "values": {
            "event_type": {"Sent": "sent", "Open": "open", "Click": "click", "Unsubscribe": "unsubscribe",
                           "HardBounce": "bounce"},
        },
    },
    "support_tickets": {
        "type": "support_tickets",
        "file": "support_tickets.csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "id_namespace": "webshop",
        "columns": {
            "ticket_id": "ticket_id", "created_at": "created_at", "customer_ref": "customer_number",
            "full_name": "requester_name", "email": "requester_email", "phone": "requester_phone",
            "reason": "reason", "channel": "channel", "status": "status", "satisfaction": "csat",
        },
        "values": {"channel": {"Email": "email", "Phone": "phone", "Chat": "chat", "In store": "store"}},
    },
    "consents": {
        "type": "consents",
        "file": "consents.csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "id_namespace": "webshop",  # consents given for an account carry the web-shop customer id
        "columns": {
            "identifier_type": "id_type", "identifier": "identifier", "purpose": "purpose", "status": "status",
            "recorded_at": "timestamp", "origin": "origin",
        },
        "values": {
            "identifier_type": {"EMAIL": "email", "PHONE": "phone", "ACCOUNT": "customer_ref",
                                "CARD": "loyalty_number"},
            "status": {"opt_in": "granted", "opt_out": "withdrawn"},
        },
    },
    "products": {
        "type": "products",
        "file": "products.csv",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "columns": {
            "sku": "sku", "name": "title", "category": "category_path", "brand": "brand", "price": "price_gbp",
            "available": "in_stock",
        },
        "values": {"available": {"Y": "true", "N": "false"}},
    },
}  # fmt: skip


def _source(name: str, spec: dict[str, Any], folder: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": spec["type"], "path": f"{folder}/{spec['file']}"}
    entry.update({k: copy.deepcopy(v) for k, v in spec.items() if k not in ("type", "file")})
    return entry


def write_mappings(out: Path, later: list[str]) -> list[Path]:
    """Write sources.yaml (the initial exports) and, when some sources have later files, sources_full.yaml."""
    initial = [_source(name, spec, "exports") for name, spec in EXPORTS.items()]
    written = [out / "sources.yaml"]
    dump_sources(written[0], initial)
    if later:
        extra = [_source(f"{name}_later", EXPORTS[name], "exports_later") for name in later]
        written.append(out / "sources_full.yaml")
        dump_sources(written[1], initial + extra)
    return written


def dump_sources(path: Path, sources: list[dict[str, Any]]) -> None:
    """Write a sources.yaml declaring `sources` (with the simulator's header)."""
    text = yaml.safe_dump({"version": 1, "sources": sources}, sort_keys=False, allow_unicode=True, width=110)
    path.write_text(HEADER + text, encoding="utf-8")


def export_file(name: str) -> str:
    """The file name an export is written to."""
    return EXPORTS[name]["file"]
