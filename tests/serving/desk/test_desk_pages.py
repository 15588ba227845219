"""The desk's pages through `to_asgi()`: login and scopes, CSRF, search by each kind of identifier, the 360 page."""

from __future__ import annotations

import json
import re

import pytest
from desk_fixtures import JOHN, People
from serving_fixtures import ADMIN_KEY, EVENTS_KEY, READ_KEY, Served
from starlette.testclient import TestClient


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the form carries no CSRF token"
    return found.group(1)


def login(client: TestClient, key: str) -> TestClient:
    token = _token(client.get("/desk/login").text)
    response = client.post("/desk/login", data={"api_key": key, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def desk(desk_client: TestClient) -> TestClient:
    desk_client.cookies.clear()
    return login(desk_client, READ_KEY)


def test_pages_need_a_session(desk_client: TestClient, people: People) -> None:
    desk_client.cookies.clear()
    for path in ("/desk/search?q=smith", f"/desk/customers/{people.john}"):
        response = desk_client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/desk/login"


def test_the_session_cookie_is_http_only_and_same_site(desk_client: TestClient) -> None:
    desk_client.cookies.clear()
    cookie = desk_client.get("/desk/login").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/desk" in cookie


def test_a_key_without_the_read_scope_is_refused(desk_client: TestClient) -> None:
    desk_client.cookies.clear()
    for key, status in ((EVENTS_KEY, 403), (ADMIN_KEY, 403), ("not-a-key", 401)):
        token = _token(desk_client.get("/desk/login").text)
        response = desk_client.post("/desk/login", data={"api_key": key, "csrf_token": token})
        assert response.status_code == status and "Traceback" not in response.text
        assert desk_client.get("/desk/search", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused(desk_client: TestClient, desk: TestClient) -> None:
    assert desk.post("/desk/logout", data={}).status_code == 403
    assert desk.post("/desk/logout", data={"csrf_token": "forged"}).status_code == 403
    assert desk.get("/desk/search?q=smith").status_code == 200  # still logged in
    desk.cookies.clear()
    # The login form too: a key posted without the token does not log in.
    desk.get("/desk/login")
    assert desk.post("/desk/login", data={"api_key": READ_KEY}, follow_redirects=False).status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        "jon smiht",  # typos in both names
        "John Smith",
        "JOHN.SMITH@example.com",
        "07700 900123",  # the national format of +44 7700 900123
        "+44 (0)7700-900-123",
        "6337000000017",  # loyalty card
    ],
)
def test_search_finds_john_by_what_the_caller_says(desk: TestClient, people: People, query: str) -> None:
    page = desk.get("/desk/search", params={"q": query}).text
    first = re.search(r'href="/desk/customers/([^"]+)"', page)
    assert first and first.group(1) == people.john, query


def test_search_by_order_number_and_source_id(desk: TestClient, people: People) -> None:
    for query in (people.john_order, people.john_source_id, people.john):
        page = desk.get("/desk/search", params={"q": query}).text
        assert f"/desk/customers/{people.john}" in page, query


def test_a_typo_ranks_the_right_person_above_look_alikes(desk: TestClient, people: People) -> None:
    page = desk.get("/desk/search", params={"q": "jon smiht"}).text
    found = re.findall(r'href="/desk/customers/([^"]+)"', page)
    assert found[0] == people.john and people.others[3] not in found  # Mary Jones shares no trigram


def test_the_360_page_shows_every_section(desk: TestClient, people: People) -> None:
    response = desk.get(f"/desk/customers/{people.john}")
    assert response.status_code == 200
    page = response.text
    for section in ("golden", "scores", "offer", "consent", "identities", "timeline"):
        assert f'id="{section}"' in page, section
    assert JOHN["email"] in page and "email: first of contacts" in page  # the field's survivorship rule
    assert "crm_contacts" in page and "same email address" in page  # link evidence
    # Each comparison's level in words from the identity model; a level the model lacks stays a number.
    assert "name: similar first and last" in page and "email: 3" in page
    assert "Churn risk" in page and "likely between" in page  # scores with reasons and interval
    assert people.john_order in page  # the timeline


def test_a_merged_id_redirects_and_an_unknown_is_404(desk: TestClient, served: Served) -> None:
    response = desk.get(f"/desk/customers/{served.merged}", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"].endswith(served.survivor)
    assert desk.get("/desk/customers/nobody").status_code == 404


def test_each_360_page_is_in_the_access_log(desk: TestClient, people: People) -> None:
    desk.get(f"/desk/customers/{people.john}")
    lines = [json.loads(x) for x in (people.workspace.root / "access.jsonl").read_text().splitlines()]
    assert {"key_id": "desk", "customer_id": people.john}.items() <= lines[-1].items()


def test_the_api_keeps_its_document_and_its_keys(desk_client: TestClient) -> None:
    paths = desk_client.get("/docs.json").json()["paths"]
    assert not any(p.startswith("/desk") for p in paths)
    assert desk_client.post("/churn", json={"customer_ids": ["x"]}).status_code == 401
