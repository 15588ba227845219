"""Segment rules: parsed with sqlglot, type-checked against the catalogue, compiled to SQL from the tree.

A rule is a SQL boolean expression (DuckDB's dialect) over the catalogue's attributes and functions, e.g.
`risk_band = 'high' AND value_band = 'high' AND consent_email`. Nothing runs before every rule of every
segment parses, names only known attributes and functions with the right types, and the segments it names
form no cycle; each error names the segment and the line and column. Compiling replaces each function by the
column that holds it (`in_segment('x')` by x's own compiled expression), so the same tree is written as
DuckDB SQL for the batch and as SQLite SQL for the live path: no SQL is ever built from strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.simplify import simplify

from activation.catalogue import (
    ATTRIBUTES,
    EVENT_KINDS,
    FUNCTIONS,
    NOW,
    SQL_FUNCTIONS,
    EventCount,
    Type,
    last_column,
)
from tessera.core.errors import InputError


class RuleError(InputError):
    """A rule that cannot run: it names the segment, the position and what was expected."""


COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)


def _where(node: exp.Expression) -> str:
    meta = getattr(node, "meta", None) or getattr(node.this, "meta", None) or {}
    if not meta and isinstance(node, exp.Column):
        meta = node.this.meta
    return f"line {meta['line']}, column {meta['col']}" if meta else f"`{node.sql('duckdb')[:40]}`"


@dataclass
class Rule:
    """One segment's parsed and checked rule."""

    segment: str
    text: str
    tree: exp.Expression
    segments: set[str] = field(default_factory=set)  # segments it names
    counts: set[EventCount] = field(default_factory=set)  # windowed counts it needs
    live: bool = False  # depends on events (directly or through a segment it names)


def parse_rule(segment: str, text: str) -> Rule:
    """Parse and type-check one rule; RuleError names the segment and the position."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except (ParseError, TokenError) as exc:
        errors = getattr(exc, "errors", None) or [{}]
        first = errors[0]
        position = f"line {first.get('line', '?')}, column {first.get('col', '?')}"
        raise RuleError(
            f"segment {segment!r}: syntax error at {position}: {first.get('description', exc)}"
        ) from None
    if tree is None:
        raise RuleError(f"segment {segment!r}: the rule is empty")
    rule = Rule(segment, text, tree)
    kind = _type_of(rule, tree)
    if kind != "bool":
        raise RuleError(f"segment {segment!r}: the rule is a {kind}, expected a condition (true/false)")
    return rule


def _literal_arg(rule: Rule, call: exp.Expression, arg: exp.Expression, expected: Type) -> object:
    if expected == "number" and isinstance(arg, (*ARITHMETIC, exp.Paren)):
        folded = simplify(arg.copy())  # `24 * 7` is a literal number too
        if isinstance(folded, exp.Literal):
            arg.replace(folded)
            arg = folded
    if not isinstance(arg, exp.Literal) or (arg.is_string != (expected == "text")):
        raise RuleError(
            f"segment {rule.segment!r}: {call.name}() at {_where(call)} takes a literal {expected} here, "
            f"got `{arg.sql('duckdb')}`"
        )
    return arg.this if arg.is_string else float(arg.this)


def _event_call(rule: Rule, call: exp.Anonymous) -> None:
    name = call.name.lower()
    args = call.expressions
    spec = FUNCTIONS[name]
    values = [_literal_arg(rule, call, a, t) for a, t in zip(args, spec.args, strict=True)]
    if name == "in_segment":
        rule.segments.add(str(values[0]))
        return
    rule.live = True
    if name == "views_in_category":
        hours = _hours(rule, call, values[1])
        rule.counts.add(EventCount("product_view", hours, str(values[0])))
        return
    kind = str(values[0])
    if kind not in EVENT_KINDS:
        raise RuleError(
            f"segment {rule.segment!r}: unknown event kind {kind!r} in {name}() at {_where(call)}; "
            f"expected one of {', '.join(EVENT_KINDS)}"
        )
    if name == "events_in":
        rule.counts.add(EventCount(kind, _hours(rule, call, values[1])))


def _hours(rule: Rule, call: exp.Expression, value: object) -> int:
    hours = float(value)  # type: ignore[arg-type]
    if hours <= 0 or hours != int(hours) or hours > 24 * 3660:
        raise RuleError(
            f"segment {rule.segment!r}: {call.name}() at {_where(call)} needs a whole number of hours "
            f"between 1 and {24 * 3660}, got {value}"
        )
    return int(hours)


def _type_of(rule: Rule, node: exp.Expression) -> Type | None:
    """The type of an expression (None: NULL, fits any), raising RuleError on anything outside the language."""
    seg = rule.segment
    if isinstance(node, exp.Paren):
        return _type_of(rule, node.this)
    if isinstance(node, exp.Column):
        if node.table or node.name not in ATTRIBUTES:
            raise RuleError(
                f"segment {seg!r}: unknown attribute `{node.sql('duckdb')}` at {_where(node)} "
                "(docs/activation.md lists them)"
            )
        return ATTRIBUTES[node.name]
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Neg):
        return _expect(rule, node.this, "number", node)
    if isinstance(node, exp.And | exp.Or):
        _expect(rule, node.this, "bool", node)
        _expect(rule, node.expression, "bool", node)
        return "bool"
    if isinstance(node, exp.Not):
        _expect(rule, node.this, "bool", node)
        return "bool"
    if isinstance(node, COMPARISONS):
        _same(rule, node, [node.this, node.expression])
        if isinstance(node, exp.EQ | exp.NEQ) is False and _type_of(rule, node.this) == "bool":
            raise RuleError(f"segment {seg!r}: ordering true/false at {_where(node)}")
        return "bool"
    if isinstance(node, ARITHMETIC):
        _expect(rule, node.this, "number", node)
        _expect(rule, node.expression, "number", node)
        return "number"
    if isinstance(node, exp.Is):
        _type_of(rule, node.this)
        if not isinstance(node.expression, exp.Null | exp.Boolean):
            raise RuleError(f"segment {seg!r}: IS takes NULL, TRUE or FALSE at {_where(node)}")
        return "bool"
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise RuleError(f"segment {seg!r}: IN takes a list of values at {_where(node)}")
        _same(rule, node, [node.this, *node.expressions])
        return "bool"
    if isinstance(node, exp.Between):
        _same(rule, node, [node.this, node.args["low"], node.args["high"]])
        return "bool"
    if isinstance(node, exp.Like | exp.ILike):
        _expect(rule, node.this, "text", node)
        _expect(rule, node.expression, "text", node)
        return "bool"
    if isinstance(node, exp.Coalesce):
        return _same(rule, node, [node.this, *node.expressions])
    if isinstance(node, exp.Abs):
        return _expect(rule, node.this, "number", node)
    if isinstance(node, exp.Lower | exp.Upper):
        return _expect(rule, node.this, "text", node)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name not in FUNCTIONS:
            known = ", ".join(sorted([*FUNCTIONS, *SQL_FUNCTIONS]))
            raise RuleError(
                f"segment {seg!r}: unknown function {node.name}() at {_where(node)}; known: {known}"
            )
        spec = FUNCTIONS[name]
        if len(node.expressions) != len(spec.args):
            raise RuleError(
                f"segment {seg!r}: {name}() at {_where(node)} takes {len(spec.args)} argument(s) "
                f"({', '.join(spec.args)}), got {len(node.expressions)}"
            )
        _event_call(rule, node)
        return spec.result
    what = type(node).__name__
    raise RuleError(
        f"segment {seg!r}: `{node.sql('duckdb')[:60]}` ({what}) at {_where(node)} is not part of the rule "
        "language (attributes, literals, AND/OR/NOT, comparisons, IN, BETWEEN, LIKE, IS NULL, + - * /, "
        "coalesce, abs, lower, upper and the event functions)"
    )


def _expect(rule: Rule, node: exp.Expression, expected: Type, parent: exp.Expression) -> Type:
    found = _type_of(rule, node)
    if found is not None and found != expected:
        raise RuleError(
            f"segment {rule.segment!r}: type error at {_where(node)}: `{node.sql('duckdb')}` is a {found}, "
            f"`{parent.key.upper()}` expects a {expected}"
        )
    return expected


def _same(rule: Rule, parent: exp.Expression, nodes: list[exp.Expression]) -> Type | None:
    types = [_type_of(rule, n) for n in nodes]
    known = {t for t in types if t is not None}
    if len(known) > 1:
        shown = " vs ".join(f"`{n.sql('duckdb')}` ({t})" for n, t in zip(nodes, types, strict=True) if t)
        raise RuleError(f"segment {rule.segment!r}: type error at {_where(parent)}: compares {shown}")
    return known.pop() if known else None


def check_rules(rules: dict[str, str]) -> dict[str, Rule]:
    """Parse every segment's rule; each names only known segments, and no segment depends on itself."""
    parsed = {name: parse_rule(name, text) for name, text in rules.items()}
    for rule in parsed.values():
        for other in sorted(rule.segments):
            if other not in parsed:
                raise RuleError(f"segment {rule.segment!r}: in_segment({other!r}) names no declared segment")
    for name in parsed:
        _no_cycle(parsed, name, [name])
    for name in _dependency_order(parsed):  # a segment naming a live one is live too
        rule = parsed[name]
        rule.live = rule.live or any(parsed[o].live for o in rule.segments)
        for other in rule.segments:
            rule.counts |= parsed[other].counts
    return parsed


def _no_cycle(parsed: dict[str, Rule], name: str, path: list[str]) -> None:
    for other in sorted(parsed[name].segments):
        if other in path:
            cycle = " -> ".join([*path[path.index(other) :], other])
            raise RuleError(f"segment {path[0]!r}: segments name each other in a cycle: {cycle}")
        _no_cycle(parsed, other, [*path, other])


def _dependency_order(parsed: dict[str, Rule]) -> list[str]:
    done: list[str] = []

    def visit(name: str) -> None:
        for other in sorted(parsed[name].segments):
            visit(other)
        if name not in done:
            done.append(name)

    for name in sorted(parsed):
        visit(name)
    return done


def compile_rule(parsed: dict[str, Rule], name: str) -> exp.Expression:
    """The rule as an expression over attribute columns and `now_epoch`, other segments inlined."""

    def rewrite(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous):
            return node
        fname, args = node.name.lower(), node.expressions
        if fname == "in_segment":
            return exp.paren(exp.func("coalesce", compile_rule(parsed, args[0].this), exp.false()))
        if fname == "hours_since":
            elapsed = exp.Sub(this=exp.column(NOW), expression=exp.column(last_column(args[0].this)))
            return exp.paren(exp.Div(this=exp.paren(elapsed), expression=exp.Literal.number(3600.0)))
        if fname == "events_in":
            column = EventCount(args[0].this, int(float(args[1].this))).column
            return exp.func("coalesce", exp.column(column), exp.Literal.number(0))
        if fname == "views_in_category":
            column = EventCount("product_view", int(float(args[1].this)), args[0].this).column
            return exp.func("coalesce", exp.column(column), exp.Literal.number(0))
        return node

    return parsed[name].tree.copy().transform(rewrite)


def conditions(tree: exp.Expression) -> list[exp.Expression]:
    """The top-level conjuncts of a compiled rule: what a change of membership is explained by."""
    node = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if isinstance(node, exp.And):
        return [*conditions(node.this), *conditions(node.expression)]
    return [node]


def reason(original: Rule, bits_before: int | None, bits_after: int) -> str:
    """The conditions of a rule whose truth changed between two bitmasks (bit i: condition i held)."""
    parts = conditions(original.tree)
    if bits_before is None:
        return "first evaluation"
    changed = [
        f"{part.sql('duckdb')} ({'now true' if bits_after >> i & 1 else 'now false'})"
        for i, part in enumerate(parts)
        if (bits_before >> i & 1) != (bits_after >> i & 1)
    ]
    return "; ".join(changed) or "unchanged conditions"
