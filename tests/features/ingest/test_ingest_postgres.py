"""A SQL source read from the real PostgreSQL server, its connection taken from the environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from features.ingest import ingest_sources

pytestmark = pytest.mark.integration
URL = "postgresql+psycopg://{user}@127.0.0.1:5432/test"


def _server_user() -> str | None:
    for user in ("postgres", "root"):
        engine = sa.create_engine(URL.format(user=user))
        try:
            with engine.connect():
                return user
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    return None


@pytest.fixture
def crm_schema() -> Iterator[tuple[str, str]]:
    """A uniquely named schema holding a small contacts table; dropped afterwards."""
    user = _server_user()
    if user is None:
        pytest.fail(
            "no PostgreSQL server at 127.0.0.1:5432 (database `test`, user postgres or root): start it"
        )
    schema = f"ingest_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(URL.format(user=user))
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        connection.execute(
            sa.text(
                f"CREATE TABLE {schema}.contacts (id integer, email_address text, first text, born date,"
                " created timestamptz, updated timestamp, note text)"
            )
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {schema}.contacts VALUES"
                " (1, 'ann@example.com', 'Ann', '1985-03-12', '2024-01-02 10:00+01', '2024-06-01 12:00', '50% off'),"
                " (2, 'bob@example.com', 'Bob', NULL, '2024-01-03 11:00+00', NULL, NULL),"
                " (NULL, 'nobody@example.com', 'Nobody', NULL, '2024-01-04 12:00+00', NULL, NULL)"
            )
        )
    try:
        yield user, schema
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_a_postgres_query_is_ingested(crm_schema, workspace, settings, write_mapping, monkeypatch) -> None:
    user, schema = crm_schema
    monkeypatch.setenv("TESSERA_TEST_PGUSER", user)
    source = {
        "name": "crm_in_postgres",
        "type": "contacts",
        "query": f"select * from {schema}.contacts where note is null or note like '%off' order by id",
        "connection": "postgresql+psycopg://${TESSERA_TEST_PGUSER}@127.0.0.1:5432/test",
        "timezone": "Europe/London",
        "columns": {
            "customer_ref": "id",
            "email": "email_address",
            "first_name": "first",
            "birth_date": "born",
            "created_at": "created",
            "updated_at": "updated",
        },
    }
    report = ingest_sources(write_mapping(source), workspace, settings)

    rows = pd.read_parquet(workspace.canonical_file("contacts", "crm_in_postgres"))
    assert list(rows["customer_ref"]) == ["1", "2"]
    assert list(rows["identity_key"]) == ["crm_in_postgres:1", "crm_in_postgres:2"]
    assert rows["birth_date"].iloc[0] == pd.Timestamp("1985-03-12").date()
    assert rows["created_at"].iloc[0] == pd.Timestamp("2024-01-02 09:00", tz="UTC")
    assert rows["updated_at"].iloc[0] == pd.Timestamp(
        "2024-06-01 11:00", tz="UTC"
    )  # naive: London summer time
    assert rows["x_note"].iloc[0] == "50% off"
    quarantine = pd.read_parquet(workspace.quarantine_table("crm_in_postgres"))
    assert list(quarantine["field"]) == ["id"]
    assert quarantine["reason"].iloc[0].startswith("required value missing")
    assert quarantine["file"].isna().all()
    (summary,) = report.sources
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (3, 2, 1)
    assert summary.read_from == ["query"]
