"""Survivorship: choosing each golden-record field from the candidate values of a customer's records."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import duckdb
import yaml
from pydantic import BaseModel, Field, model_validator

from tessera.core.errors import InputError

DEFAULT_RULES = Path(__file__).with_name("survivorship.yaml")


class FieldGroup(BaseModel):
    """Fields taken together from one winning record, and how that record is chosen."""

    fields: list[str] = Field(min_length=1)
    strategy: Literal["source_priority", "most_recent"]
    order: list[str] = Field(default_factory=list, description="source types or source names, best first")

    @model_validator(mode="after")
    def _order_needed(self) -> FieldGroup:
        if self.strategy == "source_priority" and not self.order:
            raise ValueError("strategy source_priority needs an `order` list")
        return self


class SurvivorshipRules(BaseModel):
    groups: dict[str, FieldGroup]

    @classmethod
    def load(cls, path: Path = DEFAULT_RULES) -> SurvivorshipRules:
        """Read and validate a rules file, naming the file in any error."""
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise InputError(f"{path}: not a valid survivorship rules file: {exc}") from exc

    @property
    def fields(self) -> list[str]:
        return [f for group in self.groups.values() for f in group.fields]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ranking(group: FieldGroup) -> str:
    """ORDER BY clause that puts the winning candidate of a group first."""
    if group.strategy == "most_recent":
        return "observed_at DESC NULLS LAST, source, record_id"
    cases = " ".join(
        f"WHEN source_type = {_quote(kind)} OR source = {_quote(kind)} THEN {rank}"
        for rank, kind in enumerate(group.order)
    )
    return f"CASE {cases} ELSE {len(group.order)} END, observed_at DESC NULLS LAST, source, record_id"


def golden_records(candidates: duckdb.DuckDBPyRelation, rules: SurvivorshipRules) -> duckdb.DuckDBPyRelation:
    """One row per customer_id with each field chosen by `rules`.

    `candidates` has customer_id, source, source_type, record_id, observed_at and the rules' fields, one
    row per record that may offer values. Ties are broken by source name and record id, so the result
    does not depend on row order.
    """
    aggregates, selects = [], ["customer_id"]
    for name, group in rules.groups.items():
        packed = ", ".join(group.fields)
        present = " OR ".join(f"{f} IS NOT NULL" for f in group.fields)
        aggregates.append(
            f"first(struct_pack({packed}) ORDER BY {_ranking(group)}) FILTER (WHERE {present}) AS g_{name}"
        )
        selects += [f"g_{name}.{f} AS {f}" for f in group.fields]
    grouped = candidates.aggregate(", ".join(["customer_id", *aggregates]), "customer_id")
    return grouped.select(", ".join(selects))
