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
from collections.abc import Callable, Mapping
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, PrivateAttr, model_validator

from features.ingest.parse import text_series
from tessera.core.canonical import Kind

# A formula's tokens: a number, a column name (dotted for JSON Lines paths), a `quoted column`, an operator.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|`(?P<quoted>[^`]+)`"
    r"|(?P<op>[-+*/()]))"
)


# A parsed formula: the inputs (each column as floats) and the row count give the result.
Compute = Callable[[Mapping[str, np.ndarray], int], np.ndarray]
_OPERATORS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _binary(operator: str, left: Compute, right: Compute) -> Compute:
    ufunc = _OPERATORS[operator]
    return lambda inputs, rows: ufunc(left(inputs, rows), right(inputs, rows))


def _number(value: float) -> Compute:
    return lambda inputs, rows: np.full(rows, value)


def _column(name: str) -> Compute:
    return lambda inputs, rows: inputs[name]


def _negate(operand: Compute) -> Compute:
    return lambda inputs, rows: -operand(inputs, rows)


class _Parser:
    """Recursive descent over `expr := term (+|- term)*; term := factor (*|/ factor)*;
    factor := (+|-) factor | number | column | ( expr )`, noting the columns it reads."""

    def __init__(self, text: str) -> None:
        self.columns: list[str] = []
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

    def parse(self) -> Compute:
        if not self.tokens:
            raise ValueError("the formula is empty")
        compute = self._expr()
        if self.next < len(self.tokens):
            _, value, at = self.tokens[self.next]
            raise ValueError(f"unexpected {value!r} at character {at}; expected an operator")
        return compute

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.next] if self.next < len(self.tokens) else None

    def _operations(self, operators: str, operand: Callable[[], Compute]) -> Compute:
        compute = operand()
        while (token := self._peek()) and token[0] == "op" and token[1] in operators:
            self.next += 1
            compute = _binary(token[1], compute, operand())
        return compute

    def _expr(self) -> Compute:
        return self._operations("+-", self._term)

    def _term(self) -> Compute:
        return self._operations("*/", self._factor)

    def _factor(self) -> Compute:
        token = self._peek()
        if token is None:
            raise ValueError("the formula ends too early; expected a column, a number or '('")
        kind, value, at = token
        self.next += 1
        if kind == "number":
            return _number(float(value))
        if kind in ("name", "quoted"):
            self.columns.append(value)
            return _column(value)
        if value in "+-":
            operand = self._factor()
            return _negate(operand) if value == "-" else operand
        if value == "(":
            inner = self._expr()
            closing = self._peek()
            if closing is None or closing[1] != ")":
                raise ValueError(f"the '(' at character {at} is never closed")
            self.next += 1
            return inner
        raise ValueError(f"unexpected {value!r} at character {at}; expected a column, a number or '('")


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # The kind every input column is read as before the expression runs.
    input_kind: ClassVar[Kind] = "string"
    # Set by each form's validator.
    _inputs: list[str] = PrivateAttr()
    _label: str = PrivateAttr()

    @property
    def inputs(self) -> list[str]:
        """The export's columns the expression reads."""
        return list(self._inputs)

    @property
    def label(self) -> str:
        """How reasons and reports name the expression."""
        return self._label


class Concat(_Form):
    """`{concat: [A, B], separator: " "}`: the present values of the columns joined by the separator."""

    concat: list[str]
    separator: str = " "

    @model_validator(mode="after")
    def _check(self) -> Concat:
        if len(self.concat) < 2:
            raise ValueError("`concat` needs a list of at least two of the export's columns")
        self._inputs, self._label = list(self.concat), f"concat({', '.join(self.concat)})"
        return self

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
    _compute: Compute = PrivateAttr()

    @model_validator(mode="after")
    def _parse(self) -> Formula:
        parser = _Parser(self.formula)
        try:
            self._compute = parser.parse()
        except ValueError as error:
            raise ValueError(f"formula {self.formula!r}: {error}") from None
        if not parser.columns:
            raise ValueError(f"formula {self.formula!r} reads no column; write a constant in `constants`")
        self._inputs, self._label = list(dict.fromkeys(parser.columns)), self.formula
        return self

    def evaluate(self, inputs: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
        """The result as floats; missing where an input is missing or the result is not finite."""
        arrays = {name: inputs[name].to_numpy(dtype="float64", na_value=np.nan) for name in self.inputs}
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self._compute(arrays, len(index))
        return pd.Series(np.where(np.isfinite(result), result, np.nan), index=index, dtype="float64")


class Extract(_Form):
    """`{extract: Address, pattern: '(\\d{5})'}`: the first capture group, or the whole match without one."""

    extract: str
    pattern: str
    _wrapped: str = PrivateAttr()
    _group: str = PrivateAttr()

    @model_validator(mode="after")
    def _compile(self) -> Extract:
        probe = pa.array([""])
        try:
            pc.match_substring_regex(probe, self.pattern)  # Arrow's RE2 is what runs it
        except pa.ArrowInvalid as error:
            raise ValueError(f"bad regular expression {self.pattern!r}: {error}") from None
        # The lazy prefix makes the first match win; group 1 is the whole match, group 2 the pattern's first.
        self._wrapped = rf"^(?s:.*?)((?:{self.pattern}))(?s:.*)$"
        try:
            pc.replace_substring_regex(probe, self._wrapped, r"\2")
            self._group = r"\2"
        except pa.ArrowInvalid:  # Arrow refuses to rewrite with a group the pattern does not have
            self._group = r"\1"
        self._inputs, self._label = [self.extract], f"extract({self.extract}, {self.pattern!r})"
        return self

    def evaluate(self, inputs: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
        """The extracted text; missing where the pattern does not match."""
        text = pa.array(inputs[self.extract])
        found = pc.match_substring_regex(text, self._wrapped)
        taken = pc.replace_substring_regex(text, self._wrapped, self._group)
        return text_series(pc.if_else(found, taken, pa.scalar(None, taken.type)), index)


Expression = Concat | Formula | Extract
FORMS: dict[str, type[Concat | Formula | Extract]] = {
    "concat": Concat,
    "formula": Formula,
    "extract": Extract,
}
