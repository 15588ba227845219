"""segments.yaml: the declared segments, loaded with pydantic and compiled into one evaluation plan."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from activation.catalogue import EventCount
from activation.rules import Rule, check_rules, compile_rule, conditions
from tessera.core.errors import InputError

NAME = r"^[a-z][a-z0-9_]{0,62}$"


class SegmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    description: str = ""
    rule: str


class SegmentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: list[SegmentSpec]


@dataclass(frozen=True)
class Segment:
    """A checked segment: its declaration, parsed rule and compiled expression."""

    spec: SegmentSpec
    rule: Rule
    compiled: exp.Expression

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def parts(self) -> list[exp.Expression]:
        return conditions(self.compiled)

    def member_expression(self) -> exp.Expression:
        """True or false, never null: a rule a null makes unknown does not hold."""
        return exp.func("coalesce", exp.paren(self.compiled.copy()), exp.false())

    def bits_expression(self) -> exp.Expression:
        """Bit i set when condition i holds: the reason of a change is the bits that moved."""
        terms: list[exp.Expression] = [
            exp.Mul(
                this=exp.Cast(
                    this=exp.func("coalesce", exp.paren(part.copy()), exp.false()),
                    to=exp.DataType.build("INT"),
                ),
                expression=exp.Literal.number(1 << i),
            )
            for i, part in enumerate(self.parts[:62])
        ]
        total = terms[0]
        for term in terms[1:]:
            total = exp.Add(this=total, expression=term)
        return total


@dataclass(frozen=True)
class Plan:
    """Every declared segment, checked and compiled, and the windowed counts their rules need."""

    segments: tuple[Segment, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    @property
    def counts(self) -> set[EventCount]:
        return {c for s in self.segments for c in s.rule.counts}

    @property
    def live(self) -> tuple[Segment, ...]:
        """The segments live events can change."""
        return tuple(s for s in self.segments if s.rule.live)

    def get(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)


def plan_of(specs: list[SegmentSpec]) -> Plan:
    """Check every rule (an error names the segment) and compile them."""
    names = [s.name for s in specs]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise InputError(f"segment(s) declared twice: {', '.join(doubles)}")
    parsed = check_rules({s.name: s.rule for s in specs})
    return Plan(tuple(Segment(s, parsed[s.name], compile_rule(parsed, s.name)) for s in specs))


M = TypeVar("M", bound=BaseModel)


def read_declarations(path: Path, model: type[M], setting: str) -> M:
    """A declarations file (YAML) validated as `model`; a missing or malformed file is an InputError naming it
    and the `setting` that points to it."""
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file ({setting})")
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise InputError(f"{path}: {exc}") from None


def load_segments(path: Path) -> Plan:
    """segments.yaml, checked: a malformed file or rule is an InputError naming the file and the segment."""
    specs = read_declarations(path, SegmentsFile, "TESSERA_ACTIVATION_SEGMENTS").segments
    try:
        return plan_of(specs)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
