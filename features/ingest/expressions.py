"""Mapping expressions: a canonical column built from one or more of the export's columns (docs/sources.md).

In `columns:` a canonical column takes either the name of one export column or one of these forms:

- `{concat: [HouseNo, Street], separator: " "}`: the present values joined (missing ones skipped);
- `{formula: "LineAmount / Qty"}`: + - * / over numeric columns and numbers, with parentheses;
- `{extract: Address, pattern: '(\\d{5})'}`: the first capture group (or the whole match) of a regular
  expression, empty where it does not match.

Every form is parsed here, without `eval`, when the mapping is loaded; its problems (a syntax error, a bad
regular expression) are pydantic validation errors that `mapping.load_sources` words with the file and line.
Evaluation is vectorised over a chunk's columns, already read as the form's input kind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from features.canonical import Kind
from features.ingest.parse import text_series

# A formula's tokens: a number, a column name (dotted for JSON Lines paths), a `quoted column`, an operator.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|`(?P<quoted>[^`]+)`"
    r"|(?P<op>[-+*/()]))"
)


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Column:
    name: str


@dataclass(frozen=True)
class _Negate:
    operand: _Node


@dataclass(frozen=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


_Node = _Number | _Column | _Negate | _Binary


class _Parser:
    """Recursive descent over `expr := term (+|- term)*; term := factor (*|/ factor)*;
    factor := (+|-) factor | number | column | ( expr )`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise ValueError(f"unexpected {text[position:].strip()[:1]!r} at character {position + 1}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind) + 1))
            position = match.end()
        self.next = 0

    def parse(self) -> _Node:
        if not self.tokens:
            raise ValueError("the formula is empty")
        tree = self._expr()
        if self.next < len(self.tokens):
            _, value, at = self.tokens[self.next]
            raise ValueError(f"unexpected {value!r} at character {at}; expected an operator")
        return tree

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.next] if self.next < len(self.tokens) else None

    def _binary(self, operators: str, operand: Any) -> _Node:
        tree = operand()
        while (token := self._peek()) and token[0] == "op" and token[1] in operators:
            self.next += 1
            tree = _Binary(token[1], tree, operand())
        return tree

    def _expr(self) -> _Node:
        return self._binary("+-", self._term)

    def _term(self) -> _Node:
        return self._binary("*/", self._factor)

    def _factor(self) -> _Node:
        token = self._peek()
        if token is None:
            raise ValueError("the formula ends too early; expected a column, a number or '('")
        kind, value, at = token
        self.next += 1
        if kind == "number":
            return _Number(float(value))
        if kind in ("name", "quoted"):
            return _Column(value)
        if value in "+-":
            operand = self._factor()
            return _Negate(operand) if value == "-" else operand
        if value == "(":
            inner = self._expr()
            closing = self._peek()
            if closing is None or closing[1] != ")":
                raise ValueError(f"the '(' at character {at} is never closed")
            self.next += 1
            return inner
        raise ValueError(f"unexpected {value!r} at character {at}; expected a column, a number or '('")


def _columns_of(tree: _Node) -> list[str]:
    if isinstance(tree, _Column):
        return [tree.name]
    if isinstance(tree, _Negate):
        return _columns_of(tree.operand)
    if isinstance(tree, _Binary):
        return _columns_of(tree.left) + _columns_of(tree.right)
    return []


def _compute(tree: _Node, inputs: Mapping[str, np.ndarray], rows: int) -> np.ndarray:
    if isinstance(tree, _Number):
        return np.full(rows, tree.value)
    if isinstance(tree, _Column):
        return inputs[tree.name]
    if isinstance(tree, _Negate):
        return -_compute(tree.operand, inputs, rows)
    left, right = _compute(tree.left, inputs, rows), _compute(tree.right, inputs, rows)
    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[tree.op](left, right)


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # The kind every input column is read as before the expression runs.
    input_kind: ClassVar[Kind] = "string"


class Concat(_Form):
    """`{concat: [A, B], separator: " "}`: the present values of the columns joined by the separator."""

    concat: list[str]
    separator: str = " "

    @model_validator(mode="after")
    def _check(self) -> Concat:
        if len(self.concat) < 2:
            raise ValueError("`concat` needs a list of at least two of the export's columns")
        return self

    @property
    def inputs(self) -> list[str]:
        """The export's columns the expression reads."""
        return list(self.concat)

    @property
    def label(self) -> str:
        """How reasons and reports name the expression."""
        return f"concat({', '.join(self.concat)})"

    def evaluate(self, inputs: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
        """The joined text; missing where every input is missing."""
        arrays = [pa.array(inputs[name]) for name in self.concat]
        # Arrow drops the rows whose parts are all null when skipping nulls: such rows join "" instead.
        none = pc.invert(functools.reduce(pc.or_, [pc.is_valid(array) for array in arrays]))
        arrays[0] = pc.if_else(none, pa.scalar("", arrays[0].type), arrays[0])
        joined = pc.binary_join_element_wise(
            *arrays, pa.scalar(self.separator, pa.large_string()), null_handling="skip"
        )
        return text_series(pc.if_else(pc.equal(joined, ""), pa.scalar(None, joined.type), joined), index)


class Formula(_Form):
    """`{formula: "LineAmount / Qty"}`: arithmetic over numeric columns; a division by zero gives no value."""

    input_kind: ClassVar[Kind] = "float"
    formula: str
    _tree: _Node = PrivateAttr()

    @model_validator(mode="after")
    def _parse(self) -> Formula:
        try:
            self._tree = _Parser(self.formula).parse()
        except ValueError as error:
            raise ValueError(f"formula {self.formula!r}: {error}") from None
        if not _columns_of(self._tree):
            raise ValueError(f"formula {self.formula!r} reads no column; write a constant in `constants`")
        return self

    @property
    def inputs(self) -> list[str]:
        """The export's columns the expression reads."""
        return list(dict.fromkeys(_columns_of(self._tree)))

    @property
    def label(self) -> str:
        """How reasons and reports name the expression."""
        return self.formula

    def evaluate(self, inputs: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
        """The result as floats; missing where an input is missing or the result is not finite."""
        arrays = {name: inputs[name].to_numpy(dtype="float64", na_value=np.nan) for name in self.inputs}
        with np.errstate(divide="ignore", invalid="ignore"):
            result = _compute(self._tree, arrays, len(index))
        return pd.Series(np.where(np.isfinite(result), result, np.nan), index=index, dtype="float64")


class Extract(_Form):
    """`{extract: Address, pattern: '(\\d{5})'}`: the first capture group, or the whole match without one."""

    extract: str
    pattern: str
    _wrapped: str = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> Extract:
        try:
            groups = re.compile(self.pattern).groups
            pc.match_substring_regex(pa.array([""]), self.pattern)  # Arrow's RE2 reads fewer constructs
        except (re.error, pa.ArrowInvalid) as error:
            raise ValueError(f"bad regular expression {self.pattern!r}: {error}") from None
        group = self.pattern if groups else f"({self.pattern})"
        # The lazy prefix makes the first match win; the non-capturing wrapper keeps group 1 the first group.
        self._wrapped = rf"^(?s:.*?)(?:{group})(?s:.*)$"
        return self

    @property
    def inputs(self) -> list[str]:
        """The export's columns the expression reads."""
        return [self.extract]

    @property
    def label(self) -> str:
        """How reasons and reports name the expression."""
        return f"extract({self.extract}, {self.pattern!r})"

    def evaluate(self, inputs: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
        """The extracted text; missing where the pattern does not match."""
        text = pa.array(inputs[self.extract])
        found = pc.match_substring_regex(text, self._wrapped)
        taken = pc.replace_substring_regex(text, self._wrapped, r"\1")
        return text_series(pc.if_else(found, taken, pa.scalar(None, taken.type)), index)


Expression = Concat | Formula | Extract
FORMS: dict[str, type[Concat | Formula | Extract]] = {
    "concat": Concat,
    "formula": Formula,
    "extract": Extract,
}
