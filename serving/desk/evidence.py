"""Why a customer is who they are: linked identity records with their link evidence, which source won each
golden field under which survivorship rule, and the consent history.

Read once per version of the identity and profile files (like the service's `History`) and sliced per request:
rows are grouped by customer in memory, so a page reads one customer's rows without a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from features.identity.decisions import read_decisions
from features.profile.survivorship import DEFAULT_RULES, SurvivorshipRules
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
    comparisons: dict[str, int]
    kept: bool
    cut_reason: str | None


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
    """Identity records, links and consent events, grouped by customer."""

    records: pd.DataFrame = field(default_factory=pd.DataFrame)
    record_rows: dict[str, Any] = field(default_factory=dict)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)
    link_rows: dict[str, Any] = field(default_factory=dict)
    consent: pd.DataFrame = field(default_factory=pd.DataFrame)
    consent_rows: dict[str, Any] = field(default_factory=dict)
    rules: SurvivorshipRules | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def load(cls, workspace: Workspace, rules_path: Path | None = None) -> Evidence:
        """Read the identity records and links and the consent history of the workspace."""
        found = cls(rules=SurvivorshipRules.load(rules_path or DEFAULT_RULES))
        records_path = workspace.identity / "records.parquet"
        if records_path.exists():
            records = pd.read_parquet(records_path)
            records = records[records["customer_id"].notna()].reset_index(drop=True)
            records["customer_id"] = records["customer_id"].astype(str)
            found.records = records
            found.record_rows = records.groupby("customer_id").indices
            links_path = workspace.identity / "links.parquet"
            if links_path.exists():
                links = pd.read_parquet(links_path)
                owner = dict(zip(records["identity_key"], records["customer_id"], strict=True))
                links["customer_id"] = links["identity_key_l"].map(owner)
                links = links[links["customer_id"].notna()].reset_index(drop=True)
                found.links = links
                found.link_rows = links.groupby("customer_id").indices
        found.decisions = read_decisions(workspace.identity)
        consent_path = workspace.profile / "consent_events.parquet"
        if consent_path.exists():
            consent = pd.read_parquet(consent_path)
            consent = consent[consent["customer_id"].notna()].sort_values("recorded_at", ascending=False)
            consent = consent.reset_index(drop=True)
            consent["customer_id"] = consent["customer_id"].astype(str)
            found.consent = consent
            found.consent_rows = consent.groupby("customer_id").indices
        return found

    def customer_records(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's standardised identity records (identity key, sources, fields)."""
        rows = self.record_rows.get(customer_id)
        if rows is None:
            return []
        return [_plain(r) for r in self.records.iloc[rows].to_dict("records")]

    def customer_links(self, customer_id: str) -> list[Link]:
        """The links among the customer's records, with kind, match weight and each comparison's level."""
        rows = self.link_rows.get(customer_id)
        if rows is None:
            return []
        out = []
        for row in self.links.iloc[rows].to_dict("records"):
            row = _plain(row)
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
                )
            )
        return out

    def customer_decisions(self, customer_id: str) -> list[Decision]:
        """The steward decisions that named the customer or one of its records now, newest first."""
        if self.decisions.empty:
            return []
        rows = self.record_rows.get(customer_id)
        keys = set(self.records["identity_key"].iloc[rows]) if rows is not None else set()
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
        rows = self.consent_rows.get(customer_id)
        if rows is None:
            return []
        return [_plain(r) for r in self.consent.iloc[rows].to_dict("records")]

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


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if hasattr(value, "tolist") and not isinstance(value, str):
            value = value.tolist()
        elif value is not None and not isinstance(value, list) and pd.isna(value):
            value = None  # NaN, NaT, NA
        out[key] = value
    return out
