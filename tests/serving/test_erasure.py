"""Erasure on the simulated retailer (issue 12, item 1), on the embedded stores (SQLite online store, file
registry, MLflow on SQLite) and on Redis with the Feast registry and MLflow's tracking store and registry in
PostgreSQL: after `tessera erase`, no file under the workspace (Parquet, SQLite, JSON, CSV, logs, pickles,
mlruns/), the Redis keyspace nor MLflow's PostgreSQL database holds the person's email, phone, name or ids; the running service forgets them within 5 s without a restart; the
receipt lists every store; re-ingesting the original exports does not bring them back."""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tessera"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
from erasure_scan import Traces, scan_postgres, scan_redis, scan_workspace  # noqa: E402
from serving_fixtures import CHAIN_NOW, EMBEDDED, Chained, copy_workspace  # noqa: E402
from training_fixtures import postgres_database, small_settings  # noqa: E402

from features.identity.decisions import merge_decision, read_decisions, record_decision  # noqa: E402
from features.store.settings import FeatureStoreSettings  # noqa: E402
from serving.erasure import STORES  # noqa: E402
from tessera.core.settings import Settings, Workspace  # noqa: E402

pytestmark = pytest.mark.integration
NOW = CHAIN_NOW


def _env(workspace: Workspace, store: FeatureStoreSettings) -> dict[str, str]:
    mlflow = (
        {}
        if workspace.mlflow_tracking_uri is None
        else {"TESSERA_MLFLOW_TRACKING_URI": workspace.mlflow_tracking_uri}
    )
    return {
        "TESSERA_FEAST_ONLINE_STORE": store.online_store,
        "TESSERA_FEAST_REGISTRY": store.registry,
        "TESSERA_FEAST_OFFLINE_STORE": store.offline_store,
        "TESSERA_FEAST_PROJECT": store.project,
        **mlflow,
    }


@pytest.fixture(params=["sqlite-files", "redis-postgresql"])
def configured(
    request: pytest.FixtureRequest, chained: Chained, tmp_path: Path
) -> Iterator[tuple[Workspace, FeatureStoreSettings]]:
    """A copy of the chained workspace (the session's, shared with the steward tests) on the embedded stores,
    or on Redis with a PostgreSQL Feast registry under a project of its own (removed afterwards, keys and all)
    and the models trained again into MLflow on a PostgreSQL database of its own (dropped afterwards;
    `mlruns/` then holds only the artefacts)."""
    from features.store import apply_feature_store, open_store
    from features.store.repo import materialize, teardown_project
    from tessera.pipeline import train_all

    workspace = copy_workspace(chained.workspace, tmp_path / "ws")
    if request.param == "sqlite-files":
        yield workspace, EMBEDDED
        return
    store = FeatureStoreSettings(
        project=f"tessera_test_{uuid.uuid4().hex[:10]}",
        online_store="redis",
        registry="sql",
        offline_store="duckdb",
    )
    for name in ("online_store.db", "registry.db"):
        (workspace.feature_repo_data / name).unlink()
    apply_feature_store(workspace, store)
    materialize(open_store(workspace, store), workspace, NOW)
    try:
        with postgres_database() as mlflow_database:
            shutil.rmtree(workspace.mlruns)
            workspace = Workspace(workspace.root, mlflow_tracking_uri=mlflow_database)
            train_all(workspace, NOW, small_settings(min_customers=50), store)
            yield workspace, store
    finally:
        teardown_project(open_store(workspace, store))


def _traces(workspace: Workspace, customer: str) -> Traces:
    """What identifies the customer, read independently of the erasure code: the golden record, the crosswalk and
    the canonical rows of their identity keys (emails and phones as the exports wrote them)."""
    golden = pd.read_parquet(workspace.profile / "customers.parquet").set_index("customer_id").loc[customer]
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    mine = crosswalk[crosswalk["customer_id"] == customer]
    emails, phones = {golden["email"]}, {golden["phone"]}
    for path in workspace.canonical.glob("*/*.parquet"):
        rows = pd.read_parquet(path)
        rows = (
            rows[rows["identity_key"].isin(mine["identity_key"])] if "identity_key" in rows else rows.iloc[:0]
        )
        emails |= set(rows["email"].dropna()) if "email" in rows else set()
        phones |= set(rows["phone"].dropna()) if "phone" in rows else set()
    return Traces.of(
        {customer},
        set(mine["record_id"].astype(str)),
        {e for e in emails if isinstance(e, str)},
        {p for p in phones if isinstance(p, str)},
        (golden["first_name"].lower(), golden["last_name"].lower()),
    )


def _customer(workspace: Workspace) -> str:
    """A customer with an email, a phone, a name and the most orders, who consented to personalisation."""
    golden = pd.read_parquet(workspace.profile / "customers.parquet")
    golden = golden[
        golden["email"].notna()
        & golden["phone"].notna()
        & golden["last_name"].notna()
        & golden["consent_personalisation"]
    ]
    return str(
        golden.sort_values(["n_orders", "customer_id"], ascending=[False, True])["customer_id"].iloc[0]
    )


def test_erase_leaves_no_trace_and_the_service_forgets_within_seconds(
    configured: tuple[Workspace, FeatureStoreSettings], chained: Chained, monkeypatch: pytest.MonkeyPatch
) -> None:
    from features.ingest import ingest_sources
    from serving.engine import UnknownCustomer
    from serving.schemas import RecommendRequest
    from serving.service import Tessera
    from tessera.cli import app

    workspace, store = configured
    customer = _customer(workspace)
    traces = _traces(workspace, customer)
    # A steward decision naming them, its reason naming them too: the erasure removes it whole.
    records = pd.read_parquet(workspace.identity / "records.parquet", columns=["identity_key", "customer_id"])
    other = str(records.loc[records["customer_id"] != customer, "customer_id"].iloc[0])
    said = f"{traces.names[0]} {traces.names[1]} says this is her" if traces.names else "one person"
    record_decision(workspace.identity, merge_decision(records, (customer, other), said, "desk", NOW))
    client = redis.Redis(host="127.0.0.1", port=6379)
    assert scan_workspace(workspace.root, traces), "the scan must find the customer before the erasure"
    if store.online_store == "redis":
        assert scan_redis(client, store.project, traces)
    mlflow_database = workspace.mlflow_tracking_uri
    if (
        mlflow_database is not None
    ):  # the scan reads MLflow's rows: the churn model's feature service is there
        assert not (workspace.mlruns / "mlflow.db").exists()
        assert scan_postgres(mlflow_database, Traces(frozenset({"churn_v1"}), None))

    env = {
        **_env(workspace, store),
        "TESSERA_SERVE_WORKSPACE": str(workspace.root),
        "TESSERA_SERVE_NOW": NOW.isoformat(),
        "TESSERA_SERVE_API_KEYS": "erasure-test-key",
        "TESSERA_SERVE_POLL_SECONDS": "0.5",
        "TESSERA_SERVE_WORKERS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    service = Tessera()
    try:
        assert service.engine.customer(customer).customer_id == customer
        assert service.engine.recommend(RecommendRequest(customer_id=customer, k=3)).personalised
        assert customer in service.engine.snapshot.churn.answers  # kept ahead: the erasure must drop it

        erased = CliRunner().invoke(
            app, ["erase", "--customer", customer, "--workspace", str(workspace.root)], env=env
        )
        assert erased.exit_code == 0, erased.output
        started = time.monotonic()
        receipt = json.loads(erased.stdout)

        forgotten = None
        while time.monotonic() - started < 5:
            if service.engine.resolve(customer) is None:
                forgotten = time.monotonic() - started
                break
            time.sleep(0.1)
        assert forgotten is not None, "the service still knows the customer 5 s after the erasure"
        with pytest.raises(UnknownCustomer):
            service.engine.customer(customer)
        fallback = service.engine.recommend(RecommendRequest(customer_id=customer, k=3))
        assert (
            not fallback.personalised and fallback.fallback and fallback.fallback_reason == "unknown_customer"
        )
        assert service.engine.churn([customer]).scores[0].not_scored_reason == "unknown_customer"
        assert json.loads(service.engine.cltv_json([customer]))["scores"][0]["resolved_id"] is None
        for scorer in (service.engine.snapshot.churn, service.engine.snapshot.cltv):
            assert customer not in scorer.answers and customer not in scorer.scored
    finally:
        service.close()

    online = "online store (redis)" if store.online_store == "redis" else "online store (sqlite)"
    assert set(receipt["rows_removed"]) == {*STORES, online}
    for name in (
        "canonical tables",
        "identity (records, links, crosswalk, aliases, steward decisions, caches)",
        "profile tables",
        "offline feature tables",
        online,
    ):
        assert receipt["rows_removed"][name] > 0, name
    assert scan_workspace(workspace.root, traces) == []
    assert read_decisions(workspace.identity).empty  # the other customer's half of the merge went too
    if store.online_store == "redis":
        assert scan_redis(client, store.project, traces) == []
    if mlflow_database is not None:
        assert scan_postgres(mlflow_database, traces) == []
    audit = (workspace.data / "suppression" / "audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["erasure_id"] == receipt["erasure_id"]

    # The same exports again: the person's rows are dropped and counted, never silently.
    report = ingest_sources(chained.sources, workspace, Settings(workspace=workspace.root))
    assert all(source.ok for source in report.sources)
    assert sum(source.rows_suppressed for source in report.sources) > 0
    assert scan_workspace(workspace.canonical, traces) == []

    # A customer whose rows are in a logged model's input example (the first validation rows): erased, they
    # are gone from MLflow's artefacts and database too.
    example = json.loads(next(workspace.mlruns.rglob("input_example.json")).read_text())
    shown = example["data"][0][example["columns"].index("customer_id")]
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    shown_traces = Traces.of(
        {shown},
        set(crosswalk.loc[crosswalk["customer_id"] == shown, "record_id"].astype(str)),
        set(),
        set(),
        None,
    )
    assert scan_workspace(workspace.mlruns, shown_traces)
    erased = CliRunner().invoke(
        app, ["erase", "--customer", shown, "--workspace", str(workspace.root)], env=env
    )
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["rows_removed"]["mlflow artefacts (logged tables, input examples)"] >= 2
    assert scan_workspace(workspace.root, shown_traces) == []
    if mlflow_database is not None:
        assert scan_postgres(mlflow_database, shown_traces) == []
