"""A mapping that cannot work stops ingestion with an InputError naming the file, the source and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.ingest import ingest_sources, load_sources
from tessera.core.errors import InputError

CONTACTS = "Id,Mail,First\n1,a@example.com,Ann\n2,b@example.com,Bob\n"


def contacts(**changes: object) -> dict:
    source = {
        "name": "crm",
        "type": "contacts",
        "path": "contacts.csv",
        "columns": {"customer_ref": "Id", "email": "Mail"},
    }
    return {**source, **changes}


def sql_contacts(connection: str) -> dict:
    """A contacts source read from a database with a one-line query."""
    return {
        "name": "crm_sql",
        "type": "contacts",
        "query": "select 1 as id",
        "connection": connection,
        "columns": {"customer_ref": "id"},
    }


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACTS, encoding="utf-8")
    return path


def error_of(mapping: Path, workspace, settings) -> str:
    with pytest.raises(InputError) as raised:
        ingest_sources(mapping, workspace, settings)
    message = str(raised.value)
    assert str(mapping) in message
    return message


def test_a_column_missing_from_the_export_is_named(export, workspace, settings, write_mapping) -> None:
    mapping = write_mapping(contacts(columns={"customer_ref": "Id", "email": "EmailAddress"}))
    message = error_of(mapping, workspace, settings)
    assert "source 'crm'" in message
    assert "'EmailAddress' not found" in message
    assert "Id, Mail, First" in message  # what the export has


def test_an_unknown_source_type_is_named(export, workspace, settings, write_mapping) -> None:
    message = error_of(write_mapping(contacts(type="customers")), workspace, settings)
    assert "source 'crm'" in message
    assert "unknown source type 'customers'" in message
    assert "order_lines" in message


def test_an_unknown_canonical_column_is_named(export, workspace, settings, write_mapping) -> None:
    mapping = write_mapping(contacts(columns={"customer_ref": "Id", "mail": "Mail"}))
    message = error_of(mapping, workspace, settings)
    assert "source 'crm'" in message
    assert "unknown canonical column 'mail' for contacts" in message


@pytest.mark.parametrize("key", ["columns", "constants"])
def test_a_column_ingestion_computes_cannot_be_mapped(
    key, export, workspace, settings, write_mapping
) -> None:
    derived = {"national_id_near": "Mail"}
    mapping = write_mapping(
        contacts(**{key: {"customer_ref": "Id", **derived} if key == "columns" else derived})
    )
    message = error_of(mapping, workspace, settings)
    assert f"`{key}`: 'national_id_near' is computed by ingestion and cannot be mapped" in message


def test_a_required_column_without_mapping_is_named(export, workspace, settings, write_mapping) -> None:
    message = error_of(write_mapping(contacts(columns={"email": "Mail"})), workspace, settings)
    assert "required canonical column(s) customer_ref have no mapping" in message


def test_a_missing_amount_or_count_says_what_to_write(export, workspace, settings, write_mapping) -> None:
    """A purchase log without amounts or counts (CDNOW without value, a clickstream's transactions)."""
    source = {
        "name": "log",
        "type": "order_lines",
        "path": "contacts.csv",
        "columns": {"order_id": "Id", "customer_ref": "Mail", "ordered_at": "First"},
    }
    message = error_of(write_mapping(source), workspace, settings)
    assert "required canonical column(s) quantity, unit_price have no mapping" in message
    assert 'sets `quantity: "1"` in `constants`' in message
    assert 'sets `unit_price: "0"` in `constants`' in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"format": "xlsx"}, "unknown format 'xlsx'"),
        ({"path": "missing.csv"}, "missing.csv' does not exist"),
        ({"path": "exports/*.csv"}, "no file matches"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"colums": {}}, "`colums`: unknown key"),
        ({"constants": {"created_at": "yesterday"}}, "`constants.created_at` 'yesterday' is not valid"),
        ({"values": {"first_name": {"A": "Ann"}}}, "`values.first_name`: the column is neither mapped"),
    ],
)
def test_mistakes_in_a_source_are_explained(
    export, workspace, settings, write_mapping, change, expected
) -> None:
    message = error_of(write_mapping(contacts(**change)), workspace, settings)
    assert "source 'crm'" in message
    assert expected in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"returns": {"by": "sign"}},
            "`returns.by` 'sign': expected one of negative_quantity, flag, id_prefix",
        ),
        ({"returns": {"by": "flag", "column": "Status"}}, "by flag needs `column`"),
        ({"cancellations": {"by": "negative_quantity"}}, "`cancellations.by` 'negative_quantity'"),
        ({"cancellations": {"by": "id_prefix"}}, "by id_prefix needs `prefix`"),
    ],
)
def test_a_bad_returns_rule_is_explained(
    tmp_path: Path, workspace, settings, write_mapping, rule, expected
) -> None:
    (tmp_path / "orders.csv").write_text("No,Sku,At,Qty,Price\n1,S,2024-01-01,1,2\n", encoding="utf-8")
    columns = {"order_id": "No", "sku": "Sku", "ordered_at": "At", "quantity": "Qty", "unit_price": "Price"}
    source = {"name": "pos", "type": "order_lines", "path": "orders.csv", "columns": columns, **rule}
    message = error_of(write_mapping(source), workspace, settings)
    assert "source 'pos'" in message
    assert expected in message


def test_returns_rules_belong_to_order_lines(export, workspace, settings, write_mapping) -> None:
    message = error_of(write_mapping(contacts(returns={"by": "negative_quantity"})), workspace, settings)
    assert "applies to order_lines only" in message


def test_duplicate_source_names_are_refused(export, workspace, settings, write_mapping) -> None:
    message = error_of(write_mapping(contacts(), contacts()), workspace, settings)
    assert "'crm' is declared twice" in message


def test_nothing_is_written_when_any_source_cannot_work(export, workspace, settings, write_mapping) -> None:
    broken = contacts(name="crm_copy", columns={"customer_ref": "Kundennummer"})
    error_of(write_mapping(contacts(), broken), workspace, settings)
    assert not workspace.data.exists()


def test_an_unset_environment_variable_is_named(workspace, settings, write_mapping, monkeypatch) -> None:
    monkeypatch.delenv("TESSERA_TEST_UNSET", raising=False)
    source = sql_contacts("postgresql+psycopg://${TESSERA_TEST_UNSET}@127.0.0.1:5432/test")
    message = error_of(write_mapping(source), workspace, settings)
    assert "environment variable 'TESSERA_TEST_UNSET'" in message


def test_a_secret_never_appears_in_an_error(workspace, settings, write_mapping, monkeypatch) -> None:
    monkeypatch.setenv("TESSERA_TEST_SECRET", "s3cr3t-pass")
    # Port 1 refuses the connection at once.
    source = sql_contacts("postgresql+psycopg://someone:${TESSERA_TEST_SECRET}@127.0.0.1:1/test")
    mapping = write_mapping(source)
    assert "s3cr3t" not in repr(load_sources(mapping))
    message = error_of(mapping, workspace, settings)
    assert "the database connection or the query failed" in message
    assert "s3cr3t" not in message


def test_a_mapping_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("version: 1\nsources: [\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot read the sources mapping"):
        load_sources(path)


def test_an_export_in_another_encoding_is_named(tmp_path: Path, workspace, settings, write_mapping) -> None:
    (tmp_path / "contacts.csv").write_bytes("Id,Name\n1,Jürgen\n".encode("latin-1"))
    message = error_of(write_mapping(contacts(columns={"customer_ref": "Id"})), workspace, settings)
    assert "contacts.csv" in message and "not valid utf-8" in message and "`encoding`" in message


def test_the_documented_example_is_a_valid_mapping(tmp_path: Path, monkeypatch) -> None:
    doc = (Path(__file__).parents[3] / "docs" / "sources.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "sources.yaml"
    path.write_text(example, encoding="utf-8")
    monkeypatch.setenv("PGUSER", "someone")
    config = load_sources(path)
    assert [s.name for s in config.sources] == ["webshop_orders", "crm_in_postgres"]


def test_yes_and_no_in_a_mapping_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "version: 1\nsources:\n  - name: shop\n    type: products\n    path: p.csv\n    columns: {sku: Sku, available: Av}\n"
        "    values: {available: {yes: 'true', no: 'false', on: 'true', Y: 'true'}}\n",
        encoding="utf-8",
    )
    (source,) = load_sources(path).sources
    assert source.values["available"] == {"yes": "true", "no": "false", "on": "true", "Y": "true"}
