"""Why a customer is who they are: linked identity records with their link evidence, which source won each
golden field under which survivorship rule, and the consent history.

Read once per version of the identity and profile files (like the service's `History`) and sliced per request:
rows are grouped by customer in memory, so a page reads one customer's rows without a query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from features.identity.decisions import read_decisions
from features.profile.survivorship import DEFAULT_RULES, SurvivorshipRules
from serving.customers import ByCustomer, sorted_by_customer
from serving.desk.search import normalise
from tessera.core.settings import Workspace

RECORD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "postcode",
    "birth_date",
    "loyalty_number",
)
# What each link kind means, for a steward (docs/identity.md, "Links").
LINK_KINDS = {
    "identical": "the same standardised record seen in two sources",
    "email": "same email address",
    "phone": "same phone number",
    "loyalty_number": "same loyalty card",
    "national_id": "same national id",
    "account": "same shop account",
    "probabilistic": "similar name, birth date and address (match weight)",
    "steward": "merged by a steward (see the decisions)",
}


def level_labels(model: Path) -> dict[str, dict[int, str]]:
    """What each level of each comparison of the saved identity model means, by its gamma value (the links'
    `gamma_<comparison>` columns): Splink numbers a comparison's levels from the most similar, n - 1, down to
    0, and its null level -1. Empty without a readable model."""
    try:
        comparisons = json.loads(model.read_text(encoding="utf-8"))["splink_model"]["comparisons"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    labels = {}
    for comparison in comparisons:
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        named = {
            len(levels) - 1 - i: str(level.get("label_for_charts", "")) for i, level in enumerate(levels)
        }
        labels[comparison["output_column_name"]] = {-1: "missing", **named}
    return labels


@dataclass(frozen=True)
class FieldSource:
    """A golden field: its value, the survivorship rule that chose it, and the linked sources holding it."""

    field: str
    value: Any
    rule: str
    sources: list[str]


@dataclass(frozen=True)
class Link:
    """One link between two of the customer's records, with its evidence."""

    left: str
    right: str
    kind: str
    meaning: str
    match_weight: float | None
    match_probability: float | None
    comparisons: dict[str, int]  # each comparison's level (Splink's gamma value)
    kept: bool
    cut_reason: str | None
    levels: dict[str, str] = field(default_factory=dict)  # what each level means ("one typo"), where known


@dataclass(frozen=True)
class Decision:
    """A steward's split or merge, as the 360 page shows it: "split by desk key X on DATE: reason"."""

    kind: str
    by: str
    at: datetime
    reason: str
    what: str


@dataclass
class Evidence:
    """Identity records, links and consent events, sorted by customer (`serving.customers.ByCustomer`)."""

    records: ByCustomer | None = None
    links: ByCustomer | None = None
    consent: ByCustomer | None = None
    rules: SurvivorshipRules | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    levels: dict[str, dict[int, str]] = field(default_factory=dict)  # `level_labels` of the identity model

    @classmethod
    def load(cls, workspace: Workspace, rules_path: Path | None = None) -> Evidence:
        """Read the identity records and links and the consent history of the workspace."""
        found = cls(rules=SurvivorshipRules.load(rules_path or DEFAULT_RULES))
        records = workspace.identity / "records.parquet"
        links = workspace.identity / "links.parquet"
        consent = workspace.profile / "consent_events.parquet"
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            if records.exists():
                found.records = sorted_by_customer(
                    con,
                    "SELECT * EXCLUDE (file_row_number, customer_id), CAST(customer_id AS VARCHAR) AS customer_id",
                    records,
                    "file_row_number",
                )
                if links.exists():
                    # A link belongs to the customer of its left record.
                    found.links = ByCustomer(
                        con.sql(
                            "SELECT l.* EXCLUDE (file_row_number), CAST(r.customer_id AS VARCHAR) AS customer_id "
                            "FROM read_parquet(?, file_row_number = true) l "
                            "JOIN read_parquet(?) r ON l.identity_key_l = r.identity_key "
                            "WHERE r.customer_id IS NOT NULL ORDER BY r.customer_id, l.file_row_number",
                            params=[str(links), str(records)],
                        ).to_arrow_table()
                    )
            if consent.exists():
                found.consent = sorted_by_customer(
                    con,
                    "SELECT * EXCLUDE (file_row_number, customer_id), CAST(customer_id AS VARCHAR) AS customer_id",
                    consent,
                    "recorded_at DESC NULLS LAST, file_row_number",
                )
        found.decisions = read_decisions(workspace.identity)
        found.levels = level_labels(workspace.identity / "model.json")
        return found

    def customer_records(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's standardised identity records (identity key, sources, fields)."""
        return [] if self.records is None else self.records.of(customer_id)

    def customer_links(self, customer_id: str) -> list[Link]:
        """The links among the customer's records, with kind, match weight and each comparison's level."""
        out = []
        for row in [] if self.links is None else self.links.of(customer_id):
            comparisons = {
                k.removeprefix("gamma_"): int(v)
                for k, v in row.items()
                if k.startswith("gamma_") and v is not None
            }
            out.append(
                Link(
                    left=str(row["identity_key_l"]),
                    right=str(row["identity_key_r"]),
                    kind=str(row.get("kind")),
                    meaning=LINK_KINDS.get(str(row.get("kind")), str(row.get("kind"))),
                    match_weight=row.get("match_weight"),
                    match_probability=row.get("match_probability"),
                    comparisons=comparisons,
                    kept=bool(row.get("kept", True)),
                    cut_reason=row.get("cut_reason"),
                    levels={
                        name: self.levels.get(name, {}).get(level, str(level))
                        for name, level in comparisons.items()
                    },
                )
            )
        return out

    def customer_decisions(self, customer_id: str) -> list[Decision]:
        """The steward decisions that named the customer or one of its records now, newest first."""
        if self.decisions.empty:
            return []
        keys = {r["identity_key"] for r in self.customer_records(customer_id)}
        mine = self.decisions["customer_id"].eq(customer_id) | self.decisions["identity_key"].isin(keys)
        named = self.decisions[self.decisions["decision_id"].isin(self.decisions.loc[mine, "decision_id"])]
        out = []
        for _, group in named.groupby("decision_id", sort=False):
            first = group.iloc[0]
            split = first["kind"] == "split"
            moved = group[group["side"] == ("off" if split else "b")]
            out.append(
                Decision(
                    kind=str(first["kind"]),
                    by=str(first["decided_by"]),
                    at=pd.Timestamp(first["decided_at"]).to_pydatetime(),
                    reason=str(first["reason"]),
                    what=(
                        f"record {', '.join(moved['identity_key'])} split off {first['customer_id']}"
                        if split
                        else f"{group[group['side'] == 'a']['customer_id'].iloc[0]} merged with "
                        f"{moved['customer_id'].iloc[0]}"
                    ),
                )
            )
        return sorted(out, key=lambda d: d.at, reverse=True)

    def consent_history(self, customer_id: str) -> list[dict[str, Any]]:
        """Every consent record of the customer, newest first."""
        return [] if self.consent is None else self.consent.of(customer_id)

    def field_sources(self, golden: dict[str, Any], records: list[dict[str, Any]]) -> list[FieldSource]:
        """Each golden field with its rule and the sources of the linked records that hold the same value."""
        if self.rules is None:
            return []
        out = []
        for name, group in self.rules.groups.items():
            rule = (
                f"{name}: most recent record"
                if group.strategy == "most_recent"
                else f"{name}: first of {', '.join(group.order)}"
            )
            for column in group.fields:
                value = golden.get(column)
                if value is None:
                    continue
                wanted = _comparable(value)
                sources = sorted(
                    {
                        str(s)
                        for r in records
                        if _comparable(r.get(column)) == wanted
                        for s in (r.get("sources") or [])
                    }
                )
                out.append(FieldSource(column, value, rule, sources))
        return out


def _comparable(value: Any) -> str:
    return "" if value is None else normalise(str(value)).replace(" ", "")
