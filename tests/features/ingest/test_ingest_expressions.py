"""Mapping expressions: concat, formula and extract build a canonical column from the export's columns;
a bad expression stops ingestion naming the mapping file, its line and the source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.ingest import SourceConfig, canonicalise, ingest_sources, load_sources
from tessera.core.errors import InputError


def frame(rows: list[dict]) -> pd.DataFrame:
    raw = pd.DataFrame(rows, dtype="string[pyarrow]")
    raw.index = pd.RangeIndex(1, len(rows) + 1, name="source_row")
    return raw


LINE_COLUMNS = {"order_id": "No", "ordered_at": "At", "sku": "Sku", "quantity": "Qty"}
LINE = {"No": "O1", "At": "2024-01-01", "Sku": "S", "Qty": "4", "Amount": "10", "Fee": "2"}


def source(source_type: str, columns: dict, **options: object) -> SourceConfig:
    return SourceConfig.model_validate({"name": "s", "type": source_type, "columns": columns, **options})


def orders(unit_price: object, **options: object) -> SourceConfig:
    return source("order_lines", {**LINE_COLUMNS, "unit_price": unit_price}, **options)


def test_concat_joins_the_present_values_with_the_separator() -> None:
    crm = source(
        "contacts", {"customer_ref": "Id", "street": {"concat": ["House", "Road"], "separator": " "}}
    )
    raw = frame(
        [
            {"Id": "1", "House": "12a", "Road": "High Street"},
            {"Id": "2", "House": " ", "Road": "Mill Lane"},  # a blank part is skipped, no stray separator
            {"Id": "3", "House": None, "Road": None},
        ]
    )
    rows, rejected, blanked = canonicalise(raw, crm)
    assert list(rows["street"].fillna("-")) == ["12a High Street", "Mill Lane", "-"]
    assert rejected.empty and blanked == []


def test_concat_feeds_a_date_column_through_its_parser() -> None:
    parts = {"concat": ["Year", "Month", "Day"], "separator": "-"}
    crm = source("contacts", {"customer_ref": "Id", "birth_date": parts})
    rows, _, _ = canonicalise(frame([{"Id": "1", "Year": "1980", "Month": "05", "Day": "17"}]), crm)
    assert str(rows["birth_date"].iloc[0]) == "1980-05-17"


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("Amount / Qty", 2.5),
        ("Amount * 2", 20.0),
        ("Amount + Fee", 12.0),
        ("Amount - Fee", 8.0),
        ("(Amount - Fee) / Qty", 2.0),
        ("Amount - Fee / 2", 9.0),  # * and / bind tighter than + and -
        ("-Fee + Amount", 8.0),
        ("`Amount` / 100", 0.1),  # a column name in backquotes (any name: spaces, dashes)
    ],
)
def test_a_formula_computes_a_number_from_numeric_columns(formula: str, expected: float) -> None:
    rows, rejected, _ = canonicalise(frame([LINE]), orders({"formula": formula}))
    assert rejected.empty
    assert rows["unit_price"].iloc[0] == pytest.approx(expected)


def test_a_formula_reads_the_sources_decimal_comma() -> None:
    kasse = orders({"formula": "Amount / Qty"}, decimal=",")
    rows, _, _ = canonicalise(frame([{**LINE, "Amount": "1.234,00", "Qty": "2"}]), kasse)
    assert rows["unit_price"].iloc[0] == pytest.approx(617.0)


def test_a_bad_input_of_a_required_column_quarantines_the_row_naming_that_input() -> None:
    raw = frame(
        [LINE, {**LINE, "No": "O2", "Amount": "ten"}, {**LINE, "No": "O3", "Qty": "0", "Amount": "0"}]
    )
    rows, rejected, _ = canonicalise(raw, orders({"formula": "Amount / Qty"}))
    assert list(rows["order_id"]) == ["O1"]
    reasons = dict(zip(rejected["source_row"], rejected["reason"], strict=True))
    fields = dict(zip(rejected["source_row"], rejected["field"], strict=True))
    assert fields[2] == "Amount"
    assert reasons[2] == "unparseable number 'ten' in column 'Amount'; expected a number with decimal '.'"
    # 0 / 0 has no value: the formula is named with its inputs as written, not reported as an empty value.
    assert fields[3] == "Amount / Qty"
    assert reasons[3] == (
        "division by zero or overflow: formula 'Amount / Qty' (unit_price) of Amount '0', Qty '0'; "
        "expected a non-zero divisor"
    )


@pytest.mark.parametrize(
    ("formula", "bad_row", "field", "kind", "good"),
    [
        (
            "Base + Bonus",
            {"Base": "10", "Bonus": "x"},
            "Bonus",
            "unparseable number",
            8.0,
        ),  # named by its input
        ("Base / Bonus", {"Base": "10", "Bonus": "0"}, "Base / Bonus", "division by zero or overflow", 3.0),
    ],
)
def test_a_bad_value_of_an_optional_formula_column_is_blanked_and_counted_and_the_row_kept(
    formula: str, bad_row: dict, field: str, kind: str, good: float
) -> None:
    club = source(
        "loyalty_members", {"customer_ref": "Id", "loyalty_number": "Card", "points": {"formula": formula}}
    )
    missing = {
        "Id": "3",
        "Card": "L3",
        "Base": "6",
        "Bonus": None,
    }  # a missing input: no value, not a bad one
    raw = frame(
        [{"Id": "1", "Card": "L1", **bad_row}, {"Id": "2", "Card": "L2", "Base": "6", "Bonus": "2"}, missing]
    )
    rows, rejected, blanked = canonicalise(raw, club)
    assert rejected.empty
    assert rows["points"].isna().tolist() == [True, False, True] and rows["points"].iloc[1] == good
    assert [(b.field, b.kind, b.values) for b in blanked] == [(field, kind, 1)]
    if kind.startswith("division"):
        assert "of Base '10', Bonus '0'" in blanked[0].example


def test_extract_keeps_the_first_group_or_the_whole_match() -> None:
    postcode = {"extract": "Address", "pattern": r"\b(\d{5})\b"}
    city = {"extract": "Address", "pattern": r"\p{Lu}\p{Ll}+$"}  # RE2 syntax: any upper-case letter
    crm = source("contacts", {"customer_ref": "Id", "postcode": postcode, "city": city})
    raw = frame(
        [
            {"Id": "1", "Address": "Hauptstr. 5, 10115 Berlin"},
            {"Id": "2", "Address": "no postcode here"},
            {"Id": "3", "Address": None},
        ]
    )
    rows, _, _ = canonicalise(raw, crm)
    assert list(rows["postcode"].fillna("-")) == ["10115", "-", "-"]
    assert list(rows["city"].fillna("-")) == ["Berlin", "-", "-"]


def test_expression_inputs_are_not_kept_as_extra_columns(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "orders.csv").write_text(
        "No,At,Sku,Qty,LineAmount,Coupon\nO1,2024-01-01,S1,2,5.00,X\n", encoding="utf-8"
    )
    shop = {
        "name": "shop",
        "type": "order_lines",
        "path": "orders.csv",
        "columns": {**LINE_COLUMNS, "unit_price": {"formula": "LineAmount / Qty"}},
    }
    ingest_sources(write_mapping(shop), workspace, settings)
    rows = pd.read_parquet(workspace.canonical_file("order_lines", "shop"))
    assert rows["unit_price"].tolist() == [2.5]
    assert [c for c in rows.columns if c.startswith("x_")] == ["x_Coupon"]


def test_a_national_id_built_by_an_expression_is_hashed_as_one_mapped_by_name(
    tmp_path: Path, workspace, settings, write_mapping
) -> None:
    (tmp_path / "a.csv").write_text("Id,NI\n1,AB123456C\n2,\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("Id,Letters,Digits\n1,AB,123456C\n2,,\n", encoding="utf-8")
    by_name = {
        "name": "a",
        "type": "contacts",
        "path": "a.csv",
        "columns": {"customer_ref": "Id", "national_id": "NI"},
    }
    built = {
        "name": "b",
        "type": "contacts",
        "path": "b.csv",
        "columns": {"customer_ref": "Id", "national_id": {"concat": ["Letters", "Digits"], "separator": ""}},
    }
    ingest_sources(write_mapping(by_name, built), workspace, settings)
    a, b = (pd.read_parquet(workspace.canonical_file("contacts", n)) for n in "ab")
    columns = ["national_id", "national_id_near"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert a["national_id"].iloc[0] != "AB123456C" and "123456" not in a["national_id_near"].iloc[0]
    assert a[columns].iloc[1].isna().all()


# --- errors --------------------------------------------------------------------------------------------------

MAPPING = """version: 1
sources:
  - name: shop
    type: order_lines
    path: orders.csv
    columns:
      order_id: No
      ordered_at: At
      sku: Sku
      quantity: Qty
      unit_price: {expression}
"""
UNIT_PRICE_LINE = 11


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            '{formula: "LineAmount / (Qty"}',
            "formula 'LineAmount / (Qty': the '(' at character 14 is never closed",
        ),
        (
            '{formula: "LineAmount ** Qty"}',
            "unexpected '*' at character 13; expected a column, a number or '('",
        ),
        ('{formula: "LineAmount / Qty;"}', "unexpected ';' at character 17"),
        ('{formula: ""}', "the formula is empty"),
        ('{formula: "2 * 3"}', "reads no column; write a constant in `constants`"),
        ("{extract: Address, pattern: '(?<=x)y'}", "bad regular expression '(?<=x)y'"),
        ("{extract: Address, pattern: '(unclosed'}", "bad regular expression '(unclosed'"),
        ("{concat: [Street]}", "`concat` needs a list of at least two"),
        (
            '{concat: [A, B], sep: "-"}',
            "`columns.unit_price.sep`: unknown key; expected one of concat, separator",
        ),
        ("{sum: [A, B]}", "expected the export's column name, or a mapping with exactly one of the keys"),
        (
            "[A, B]",
            "`columns.unit_price`: expected the export's column name, or a mapping with exactly one",
        ),
    ],
)
def test_a_bad_expression_names_file_line_and_source(tmp_path: Path, expression: str, expected: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(MAPPING.format(expression=expression), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_sources(path)
    message = str(raised.value)
    assert message.startswith(f"{path}, line {UNIT_PRICE_LINE}: source 'shop': `columns.unit_price")
    assert expected in message


def test_a_formula_cannot_feed_a_text_column(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    text = MAPPING.format(expression="Price") + '      currency: {formula: "Price * 2"}\n'
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_sources(path)
    assert str(raised.value).startswith(
        f"{path}, line 12: source 'shop': `columns.currency`: a formula gives a number"
    )


def test_an_expression_reading_an_unknown_column_names_file_line_and_source(
    tmp_path: Path, workspace, settings
) -> None:
    (tmp_path / "orders.csv").write_text(
        "No,At,Sku,Qty,LineAmount\nO1,2024-01-01,S1,2,5.00\n", encoding="utf-8"
    )
    path = tmp_path / "sources.yaml"
    path.write_text(MAPPING.format(expression='{formula: "LineTotal / Qty"}'), encoding="utf-8")
    with pytest.raises(InputError) as raised:
        ingest_sources(path, workspace, settings)
    message = str(raised.value)
    assert message.startswith(
        f"{path}, line {UNIT_PRICE_LINE}: source 'shop': `columns.unit_price` (LineTotal / Qty)"
    )
    assert "column(s) 'LineTotal' not found in" in message
    assert "expected one of the export's columns: No, At, Sku, Qty, LineAmount" in message


def test_every_documented_expression_example_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[3] / "docs" / "sources.md").read_text(encoding="utf-8")
    section = doc.split("## Building a column from several columns", 1)[1].split("\n## ", 1)[0]
    examples = [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]
    forms = set()
    for example in examples:
        expressions = source("order_lines", yaml.safe_load(example)["columns"]).expressions()
        forms |= {type(expression).__name__ for expression in expressions.values()}
    assert forms == {"Concat", "Formula", "Extract"}
