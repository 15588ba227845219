"""What the desk tests share: the served workspace with names, contacts and identity evidence added.

The serving tests' retailer has ids and orders but no people; the desk needs names, emails, phones and loyalty
cards to search, and identity records with links to explain. `with_people` writes them for a few customers,
hand-picked: John Smith (two linked records: a shop account and a CRM contact sharing an email), and look-alikes
that a typo search must rank below him.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from serving_fixtures import Served, copy_workspace

from features.identity.match import IdentityMatcher
from features.identity.standardise import standardise_records
from tessera.core.settings import Workspace

JOHN = {
    "first_name": "John",
    "last_name": "Smith",
    "email": "john.smith@example.com",
    "phone": "+447700900123",
    "loyalty_number": "6337000000017",
    "city": "London",
}
LOOK_ALIKES = [
    ("Jane", "Smith", "London"),
    ("John", "Smithers", "Leeds"),
    ("Joan", "Smyth", "York"),
    ("Mary", "Jones", "Bath"),
]


@dataclass(frozen=True)
class People:
    """The desk's workspace and who is who in it."""

    workspace: Workspace
    john: str  # John Smith: two linked records
    john_order: str  # one of his order numbers
    john_source_id: str  # one of his source record ids
    others: list[str]


def with_people(served: Served, root: Path) -> People:
    """A copy of the served workspace whose golden records carry names and contacts, with identity evidence."""
    workspace = copy_workspace(served.workspace, root)
    customers = pd.read_parquet(workspace.profile / "customers.parquet")
    ids = customers["customer_id"].astype(str).tolist()
    john = served.regular
    others = [c for c in ids if c != john][: len(LOOK_ALIKES)]
    for column in ("first_name", "last_name", "email", "phone", "loyalty_number", "city"):
        customers[column] = None
    position = dict(zip(ids, range(len(ids)), strict=True))
    for column, value in JOHN.items():
        customers.loc[position[john], column] = value
    for customer, (first, last, city) in zip(others, LOOK_ALIKES, strict=True):
        row = position[customer]
        customers.loc[row, ["first_name", "last_name", "city"]] = [first, last, city]
        customers.loc[row, "email"] = f"{first}.{last}@example.org".lower()
    customers.to_parquet(workspace.profile / "customers.parquet")
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    shop_id = str(crosswalk.loc[crosswalk["customer_id"] == john, "record_id"].iloc[0])
    records = pd.DataFrame(
        [
            {
                "identity_key": f"shop:{shop_id}",
                "first_name": "john",
                "last_name": "smith",
                "email": JOHN["email"],
                "phone": None,
                "city": "london",
                "loyalty_number": None,
                "sources": ["shop"],
                "customer_id": john,
            },
            {
                "identity_key": "crm:C777",
                "first_name": "john",
                "last_name": "smith",
                "email": JOHN["email"],
                "phone": JOHN["phone"],
                "city": "london",
                "loyalty_number": JOHN["loyalty_number"],
                "sources": ["crm_contacts"],
                "customer_id": john,
            },
        ]
    )
    records.to_parquet(workspace.identity / "records.parquet")
    pd.DataFrame(
        [
            {
                "identity_key_l": f"shop:{shop_id}",
                "identity_key_r": "crm:C777",
                "kind": "email",
                "match_weight": None,
                "match_probability": None,
                "gamma_name": 4,
                "gamma_email": 3,
                "kept": True,
                "cut_reason": None,
            }
        ]
    ).to_parquet(workspace.identity / "links.parquet")
    _write_identity_model(workspace)
    orders = pd.read_parquet(workspace.profile / "orders.parquet", columns=["customer_id", "order_id"])
    john_order = str(orders.loc[orders["customer_id"] == john, "order_id"].iloc[0])
    return People(workspace, john, john_order, shop_id, others)


def _write_identity_model(workspace: Workspace) -> None:
    """A saved identity model (names and emails compared), as `tessera resolve` leaves one: the desk names the
    links' comparison levels from it."""
    raw = pd.DataFrame(
        {
            "identity_key": ["a", "b", "c"],
            "first_name": ["john", "jon", "mary"],
            "last_name": ["smith", "smith", "jones"],
            "email": [JOHN["email"], JOHN["email"], "mary@example.org"],
        }
    )
    records, _ = standardise_records(raw, "GB")
    model = IdentityMatcher().fit(records).to_json()
    (workspace.identity / "model.json").write_text(json.dumps(model), encoding="utf-8")
