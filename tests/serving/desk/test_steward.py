"""Steward split and merge over the HTTP API (in process, `to_asgi()`), and a split surviving `tessera retrain`
through the CLI: the split-off record's orders move to its own customer in the profile, the offline and online
feature store and the scores. On a simulated retailer through the real chain (`steward_fixtures.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from serving_fixtures import ADMIN_KEY, READ_KEY, STEWARD_KEY
from starlette.testclient import TestClient
from steward_fixtures import NOW, Chained, split_candidate, steward_env
from training_fixtures import small_environment
from typer.testing import CliRunner

from tessera.core.settings import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def client(steward_workspace: Workspace) -> Iterator[TestClient]:
    from serving.service import Tessera

    with pytest.MonkeyPatch.context() as patch:
        for key, value in steward_env(steward_workspace).items():
            patch.setenv(key, value)
        with TestClient(Tessera.to_asgi(), raise_server_exceptions=False) as test_client:
            yield test_client


def _key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _record_ids(workspace: Workspace, identity_key: str) -> set[tuple[str, str]]:
    crosswalk = pd.read_parquet(workspace.identity / "crosswalk.parquet")
    mine = crosswalk[crosswalk["identity_key"] == identity_key]
    return set(zip(mine["source"], mine["record_id"].astype(str), strict=True))


def _identities(answer: dict) -> set[tuple[str, str]]:
    return {(i["source"], str(i["record_id"])) for i in answer["identities"]}


def test_split_then_merge_over_the_api(client: TestClient, steward_workspace: Workspace) -> None:
    workspace = steward_workspace
    customer, off, kept = split_candidate(workspace)
    body = {"customer_id": customer, "identity_key": off, "reason": "her daughter's shop account"}

    # Only a key with `admin` may act; bad requests are named, nothing is recorded.
    assert client.post("/identity/split", json=body, headers=_key(READ_KEY)).status_code == 403
    refused = {
        404: {**body, "customer_id": "C999999999"},
        422: {**body, "identity_key": "nobody:0"},
    }
    for status, wrong in refused.items():
        answer = client.post("/identity/split", json=wrong, headers=_key(STEWARD_KEY))
        assert answer.status_code == status and "error" in answer.json(), answer.text
    same = {"customer_ids": [customer, customer], "reason": "x"}
    answer = client.post("/identity/merge", json=same, headers=_key(ADMIN_KEY))
    assert answer.status_code == 422 and "with itself" in answer.json()["error"]
    assert (
        client.post("/identity/split", json={**body, "reason": ""}, headers=_key(STEWARD_KEY)).status_code
        == 400
    )
    assert not (workspace.identity / "decisions.parquet").exists()

    split = client.post("/identity/split", json=body, headers=_key(STEWARD_KEY))
    assert split.status_code == 200, split.text
    moved = split.json()["customers"]
    new = moved[off]
    assert moved[kept] == customer and new != customer
    # Both customers at once, without a restart: the old id keeps the rest, the new one holds the record.
    old_view = client.get(f"/customers/{customer}", headers=_key(READ_KEY)).json()
    new_view = client.get(f"/customers/{new}", headers=_key(READ_KEY)).json()
    assert _record_ids(workspace, off) <= _identities(new_view)
    assert not _record_ids(workspace, off) & _identities(old_view)
    assert _record_ids(workspace, kept) <= _identities(old_view)
    assert new_view["recent_orders"], "the split-off record's orders belong to its own customer"
    churn = client.post("/churn", json={"customer_ids": [new]}, headers=_key(READ_KEY)).json()
    assert churn["scores"][0]["resolved_id"] == new

    merged = client.post(
        "/identity/merge",
        json={"customer_ids": [new, customer], "reason": "it was her after all"},
        headers=_key(STEWARD_KEY),
    )
    assert merged.status_code == 200, merged.text
    assert set(merged.json()["customers"].values()) == {customer}  # the older id survives
    again = client.get(f"/customers/{new}", headers=_key(READ_KEY), follow_redirects=False)
    assert again.status_code == 307 and again.headers["location"].endswith(f"/{customer}")
    decisions = pd.read_parquet(workspace.identity / "decisions.parquet")
    assert set(decisions["kind"]) == {"split", "merge"} and set(decisions["decided_by"]) == {"steward"}


def test_a_split_survives_the_next_retrain(chained: Chained, steward_workspace: Workspace) -> None:
    from features.store import OnlineFeatures
    from features.store.settings import FeatureStoreSettings
    from serving.engine import Engine
    from serving.settings import ServeSettings
    from serving.steward import apply_decision, split
    from tessera.cli import app
    from tessera.core.settings import Settings

    workspace, store = steward_workspace, FeatureStoreSettings()
    customer, off, kept = split_candidate(workspace)
    rows = split(workspace, customer, off, "a stranger's card", "desk-7", NOW)
    new = apply_decision(workspace, rows, NOW, Settings(workspace=workspace.root), store).customers[off]

    retrained = CliRunner().invoke(
        app,
        [
            "retrain",
            "--workspace",
            str(workspace.root),
            "--now",
            NOW.isoformat(),
            "--sources",
            str(chained.sources),
        ],
        env=small_environment(),  # small models, as the chain was trained: what is asserted is where orders go
    )
    assert retrained.exit_code == 0, retrained.output
    summary = pd.read_json(workspace.identity / "summary.json", typ="series")
    assert summary["steward_decisions"] == 1

    records = pd.read_parquet(workspace.identity / "records.parquet").set_index("identity_key")["customer_id"]
    assert records[off] == new and records[kept] == customer
    # Its orders: in the profile, the offline features, the online store and the scores.
    orders = pd.read_parquet(workspace.profile / "orders.parquet")
    assert (orders["customer_id"] == new).sum() > 0
    offline = pd.read_parquet(workspace.feature_repo_data / "offline" / "customer_transactions.parquet")
    assert (offline["customer_id"] == new).any()
    online = OnlineFeatures.open(workspace, "churn_v1", store).columns([new, customer], request_time=NOW)
    assert (
        online["orders_lifetime"][0] == offline.loc[offline["customer_id"] == new, "orders_lifetime"].iloc[-1]
    )
    assert online["orders_lifetime"][0] >= 1
    with pytest.MonkeyPatch.context() as patch:
        for key, value in steward_env(workspace).items():
            patch.setenv(key, value)
        engine = Engine(ServeSettings(), store)
    try:
        scored = engine.churn([new, customer]).scores
        assert [s.resolved_id for s in scored] == [new, customer]
        assert scored[0].scored and scored[0].churn_probability is not None
    finally:
        engine.close()


def test_steward_forms_need_the_admin_scope_and_the_csrf_token(
    client: TestClient, steward_workspace: Workspace
) -> None:
    customer, off, _ = split_candidate(steward_workspace)
    for key, buttons in ((READ_KEY, False), (STEWARD_KEY, True)):
        client.cookies.clear()
        login = client.get("/desk/login")
        csrf = _csrf(login.text)
        client.post("/desk/login", data={"api_key": key, "csrf_token": csrf})
        page = client.get(f"/desk/customers/{customer}").text
        assert ("Split off" in page) == buttons and ('action="/desk/merge"' in page) == buttons
    # The steward's own session, but a form without its CSRF token: refused, nothing recorded.
    form = {"identity_key": off, "reason": "x"}
    forged = client.post(f"/desk/customers/{customer}/split", data=form, follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    client.cookies.clear()
    csrf = _csrf(client.get("/desk/login").text)
    client.post("/desk/login", data={"api_key": READ_KEY, "csrf_token": csrf})
    csrf = _csrf(client.get(f"/desk/customers/{customer}").text)
    form = {"identity_key": off, "reason": "x", "csrf_token": csrf}
    refused = client.post(f"/desk/customers/{customer}/split", data=form, follow_redirects=False)
    assert refused.status_code == 403 and "lacks the `admin` scope" in refused.text
    assert not (steward_workspace.identity / "decisions.parquet").exists()


def _csrf(page: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)
