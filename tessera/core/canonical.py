"""The canonical tables: what every source export is turned into, whatever the retailer called things.

One table per source type (see docs/sources.md). Each canonical row also carries:

- `source`: the source's name from the mapping file;
- `source_row`: the 1-based data row of the source export it came from (for error messages and audits);
- `record_id`: the source's own id of the person the row is about (its customer ref, or for a guest
  order the order id, for a card-only receipt the card number), null when the row is anonymous;
- `identity_key`: `"<namespace>:<record_id>"`, the key identity resolution works on; rows of sources that
  share an id namespace (web-shop orders and logged-in web events, say) share keys;
- `x_<column>`: every column of the export that the mapping does not name, kept as text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

Kind = Literal["string", "timestamp", "date", "float", "int", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    doc: str = ""
    derived: bool = False  # computed by ingestion from another column; a mapping cannot name it
    # Text that is often all digits (an id, a card, phone or national id number): a whole number written with a
    # decimal point, as a spreadsheet or a float column with gaps writes 13085 (`13085.0`), is the whole number.
    numeric_text: bool = False


# Person attributes that any person-carrying source may have; identity resolution matches on them.
PERSON_COLUMNS: tuple[Column, ...] = (
    Column("first_name", "string", doc="given name"),
    Column("middle_name", "string", doc="middle name(s) or initial"),
    Column("last_name", "string", doc="family name"),
    Column("full_name", "string", doc="whole name when the source does not split it"),
    Column("email", "string", doc="email address as written"),
    Column("phone", "string", numeric_text=True, doc="phone number as written"),
    Column("street", "string", doc="street, with the house number unless the source keeps that apart"),
    Column("house_number", "string", doc="house number, when the source keeps it apart from the street"),
    Column("postcode", "string"),
    Column("city", "string"),
    Column("region", "string", doc="state, county or region"),
    Column("country", "string", doc="ISO 3166 alpha-2 or a country name"),
    Column("birth_date", "date"),
    Column("gender", "string"),
    Column(
        "national_id",
        "string",
        numeric_text=True,
        doc="national or tax id; stored only as a salted hash (`hash_national_ids`), never as written",
    ),
    Column(
        "national_id_near",
        "string",
        doc="salted hashes of the national id and of each id one character shorter (`near_national_ids`):"
        " two ids one typo apart share one",
        derived=True,
    ),
)

LINE_TYPES = ("sale", "return", "cancellation")
CHANNELS = ("online", "store")
TICKET_CHANNELS = ("email", "phone", "chat", "store")
WEB_EVENT_TYPES = ("page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout_start")
EMAIL_EVENT_TYPES = ("sent", "open", "click", "unsubscribe", "bounce")
CONSENT_PURPOSES = ("email", "sms", "personalisation", "profiling")
CONSENT_STATUSES = ("granted", "withdrawn")
IDENTIFIER_TYPES = ("email", "phone", "customer_ref", "loyalty_number")

SOURCE_TYPES: dict[str, tuple[Column, ...]] = {
    "order_lines": (
        Column("order_id", "string", numeric_text=True, required=True, doc="order or receipt number"),
        Column("line_no", "int", doc="line within the order"),
        Column(
            "customer_ref",
            "string",
            numeric_text=True,
            doc="the source's customer/account id; empty for guests",
        ),
        Column("ordered_at", "timestamp", required=True),
        Column(
            "sku",
            "string",
            numeric_text=True,
            doc="product id; absent when the export has no products (orders alone)",
        ),
        Column("product_name", "string"),
        Column("quantity", "float", required=True, doc="units; negative on a return line"),
        Column("unit_price", "float", required=True, doc="price per unit, never negative"),
        Column("currency", "string"),
        Column("channel", "string", doc="online | store"),
        Column("store_id", "string", numeric_text=True),
        Column("line_type", "string", doc="sale | return | cancellation, from the mapping's `returns` rules"),
        Column("loyalty_number", "string", numeric_text=True, doc="loyalty card shown at the till"),
        *PERSON_COLUMNS,
    ),
    "contacts": (
        Column("customer_ref", "string", numeric_text=True, required=True, doc="the CRM's contact id"),
        *PERSON_COLUMNS,
        Column("created_at", "timestamp"),
        Column("updated_at", "timestamp"),
    ),
    "loyalty_members": (
        Column(
            "customer_ref", "string", numeric_text=True, required=True, doc="the loyalty program's member id"
        ),
        Column(
            "loyalty_number",
            "string",
            numeric_text=True,
            required=True,
            doc="card number, printed on receipts",
        ),
        Column("tier", "string"),
        Column("points", "float"),
        Column("joined_at", "timestamp"),
        *PERSON_COLUMNS,
    ),
    "web_events": (
        Column("event_id", "string", numeric_text=True),
        Column("occurred_at", "timestamp", required=True),
        Column("event_type", "string", required=True, doc=" | ".join(WEB_EVENT_TYPES)),
        Column("session_id", "string", numeric_text=True),
        Column("anonymous_id", "string", numeric_text=True, doc="cookie/device id"),
        Column("customer_ref", "string", numeric_text=True, doc="account id when logged in"),
        Column("sku", "string", numeric_text=True),
        Column("search_query", "string"),
        Column("page_url", "string"),
    ),
    "email_events": (
        Column("occurred_at", "timestamp", required=True),
        Column("event_type", "string", required=True, doc=" | ".join(EMAIL_EVENT_TYPES)),
        Column("campaign_id", "string", numeric_text=True),
        Column("customer_ref", "string", numeric_text=True, doc="recipient id in the email tool's namespace"),
        Column("email", "string"),
    ),
    "support_tickets": (
        Column("ticket_id", "string", numeric_text=True, required=True),
        Column("created_at", "timestamp", required=True),
        Column("customer_ref", "string", numeric_text=True),
        Column("reason", "string"),
        Column("channel", "string", doc=" | ".join(TICKET_CHANNELS)),
        Column("status", "string"),
        Column("satisfaction", "float", doc="1 (worst) to 5 (best)"),
        Column("first_name", "string"),
        Column("last_name", "string"),
        Column("full_name", "string"),
        Column("email", "string"),
        Column("phone", "string", numeric_text=True),
    ),
    "consents": (
        Column("identifier_type", "string", required=True, doc=" | ".join(IDENTIFIER_TYPES)),
        Column("identifier", "string", numeric_text=True, required=True),
        Column("purpose", "string", required=True, doc=" | ".join(CONSENT_PURPOSES)),
        Column("status", "string", required=True, doc=" | ".join(CONSENT_STATUSES)),
        Column("recorded_at", "timestamp", required=True),
        Column("origin", "string", doc="where it was given: web form, store, email link ..."),
    ),
    "products": (
        Column("sku", "string", numeric_text=True, required=True),
        Column("name", "string"),
        Column("category", "string", doc="category path, levels separated by ' > '"),
        Column("brand", "string"),
        Column("price", "float"),
        Column("available", "bool"),
    ),
}

# Columns every canonical table has besides its own.
META_COLUMNS: tuple[Column, ...] = (
    Column("source", "string", required=True),
    Column("source_row", "int", required=True),
    Column("record_id", "string"),
    Column("identity_key", "string"),
)

# Source types whose rows describe a person (they feed identity resolution).
PERSON_SOURCE_TYPES = (
    "order_lines",
    "contacts",
    "loyalty_members",
    "web_events",
    "email_events",
    "support_tickets",
)


def columns(source_type: str) -> tuple[Column, ...]:
    """The canonical columns of a source type, raising a clear error for an unknown type."""
    try:
        return SOURCE_TYPES[source_type]
    except KeyError:
        known = ", ".join(SOURCE_TYPES)
        raise ValueError(f"unknown source type {source_type!r}; expected one of: {known}") from None


_NOT_ID = re.compile(r"[^0-9A-Z]")


def hash_national_ids(values: pd.Series, salt: str) -> pd.Series:
    """National ids as salted hashes (HMAC-SHA256, hex): spaces, dashes and case do not change the hash.

    The raw id never reaches a canonical table; equal ids still give equal hashes, so they can be matched.
    """
    return _per_distinct_id(values, salt, _hmac)[0]


def near_national_ids(values: pd.Series, salt: str) -> pd.Series:
    """Per national id, the salted hashes of the id and of each id one character shorter, sorted and
    space-separated (16 hex digits each): a deletion neighbourhood, the index of SymSpell-style lookups.

    Two ids one typo apart share one of these hashes: a wrong or a missing digit, an extra one, two
    neighbours swapped (1234567 and 1239567 both lose their fifth digit to 123567); so do a few ids two
    apart (a digit moved: 1234567 and 2345671 share 234567). Raw ids stay unreadable, as with
    `hash_national_ids`; the near level of identity resolution compares these sets.
    """
    return _per_distinct_id(values, salt, _neighbourhood)[0]


def national_id_columns(values: pd.Series, salt: str) -> tuple[pd.Series, pd.Series]:
    """`hash_national_ids` and `near_national_ids` of the same ids, read and cleaned once: what ingestion stores."""
    hashed, near = _per_distinct_id(values, salt, _hmac, _neighbourhood)
    return hashed, near


def _hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _neighbourhood(key: bytes, value: str) -> str:
    variants = {value, *(value[:i] + value[i + 1 :] for i in range(len(value)))}
    return " ".join(sorted(_hmac(key, variant)[:16] for variant in variants))


def _per_distinct_id(values: pd.Series, salt: str, *digests: Callable[[bytes, str], str]) -> list[pd.Series]:
    """Each `digest(key, id)` of each national id, computed once per distinct id: spaces, dashes and case
    dropped."""
    if not salt:
        raise ValueError("TESSERA_ID_SALT is empty: national ids are only stored hashed with a salt")
    key = salt.encode()
    text = values.astype("string").str.upper().str.replace(_NOT_ID, "", regex=True)
    text = text.mask(text == "")
    distinct = text.dropna().unique()
    return [
        text.map({v: digest(key, v) for v in distinct}, na_action="ignore").astype("string")
        for digest in digests
    ]
