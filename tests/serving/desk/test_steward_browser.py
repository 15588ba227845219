"""Steward split and merge in a real browser (headless Chromium through Selenium) against the real server, on a
simulated retailer through the real chain: search → open → split → the page and the API both show two customers;
then merge them back → one, the absorbed id an alias of the survivor. A read-only key sees no steward buttons."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from serving_fixtures import READ_KEY, STEWARD_KEY
from steward_fixtures import split_candidate, steward_env
from test_desk_browser import (  # noqa: F401
    _click_and_wait,
    _login,
    _screenshot,
    _serious_violations,
    _wait_for,
    browser,
)

from serving.process import running_service
from tessera.core.settings import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def server(steward_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("steward_server") / "server.log"
    with running_service(steward_workspace.root, steward_env(steward_workspace), log) as url:
        yield url.replace("127.0.0.1", "localhost")


def _api(server: str, path: str) -> httpx.Response:
    return httpx.get(f"{server}{path}", headers={"X-API-Key": READ_KEY}, timeout=30, follow_redirects=False)


def _identity_keys(driver: object) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#identities table:first-of-type tbody tr")  # type: ignore[attr-defined]
    return [row.find_element(By.CSS_SELECTOR, "td").text for row in rows]


def _submit(driver: object, button: object) -> None:
    """Post a steward form and wait for the customer's page it leads back to (the same URL), with its decisions."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    _click_and_wait(driver, button)
    WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, "decisions")))


def test_split_and_merge_round_trip_in_the_browser(
    browser: object,  # noqa: F811
    server: str,
    steward_workspace: Workspace,
) -> None:
    import pandas as pd
    from selenium.webdriver.common.by import By

    customer, off, kept = split_candidate(steward_workspace)
    golden = pd.read_parquet(steward_workspace.profile / "customers.parquet").set_index("customer_id")
    name = f"{golden.loc[customer, 'first_name']} {golden.loc[customer, 'last_name']}"

    # A read-only desk key sees the page without any steward action.
    _login(browser, server, READ_KEY)
    browser.get(f"{server}/desk/customers/{customer}")  # type: ignore[attr-defined]
    assert not browser.find_elements(By.CSS_SELECTOR, "form.steward")  # type: ignore[attr-defined]

    # The steward: search by name, open the customer, split the record off.
    _login(browser, server, STEWARD_KEY)
    browser.get(f"{server}/desk/search?q={name}")  # type: ignore[attr-defined]
    hits = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".hit a")]  # type: ignore[attr-defined]
    assert any(h.endswith(f"/{customer}") for h in hits), hits
    browser.get(next(h for h in hits if h.endswith(f"/{customer}")))  # type: ignore[attr-defined]
    assert off in _identity_keys(browser) and kept in _identity_keys(browser)
    assert _serious_violations(browser) == []
    _screenshot(browser, "steward")
    button = browser.find_element(By.CSS_SELECTOR, f'button[data-split="{off}"]')  # type: ignore[attr-defined]
    form = button.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.NAME, "reason").send_keys("her daughter's shop account")
    _submit(browser, button)
    _wait_for(browser, f"/desk/customers/{customer}")
    assert off not in _identity_keys(browser) and kept in _identity_keys(browser)
    decisions = browser.find_element(By.ID, "decisions").text  # type: ignore[attr-defined]
    assert "split by desk key steward on" in decisions and "her daughter's shop account" in decisions

    # The API agrees: two customers, the old id with the rest, a new one with the record.
    records = pd.read_parquet(steward_workspace.identity / "records.parquet").set_index("identity_key")
    new = str(records.loc[off, "customer_id"])
    assert new != customer and records.loc[kept, "customer_id"] == customer
    assert _api(server, f"/customers/{customer}").status_code == 200
    assert _api(server, f"/customers/{new}").json()["customer_id"] == new

    # Merge them back from the remaining customer's page: one customer, the new id an alias of the old.
    browser.find_element(By.ID, "other-customer").send_keys(new)  # type: ignore[attr-defined]
    browser.find_element(By.ID, "merge-reason").send_keys("it was her after all")  # type: ignore[attr-defined]
    _submit(browser, browser.find_element(By.CSS_SELECTOR, "#merge button"))  # type: ignore[attr-defined]
    _wait_for(browser, f"/desk/customers/{customer}")
    assert off in _identity_keys(browser)
    assert "merged by desk key steward" in browser.find_element(By.ID, "decisions").text  # type: ignore[attr-defined]
    moved = _api(server, f"/customers/{new}")
    assert moved.status_code == 307 and moved.headers["location"].endswith(f"/customers/{customer}")
