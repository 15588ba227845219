"""The desk in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, through Selenium)
against the real server, with axe-core's accessibility check on every page.

Set TESSERA_DESK_SCREENSHOTS to a folder to keep screenshots of the main pages (docs/desk/ holds the committed
ones: `TESSERA_DESK_SCREENSHOTS=docs/desk uv run pytest tests/serving/desk/test_desk_browser.py`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from desk_fixtures import People
from serving_fixtures import EVENTS_KEY, READ_KEY

from serving.process import running_service

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def server(
    people: People, desk_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service on the desk's workspace, with the default `Secure` session cookie; browsers keep those from
    http://localhost (a secure context), so the base URL is localhost."""
    log = tmp_path_factory.mktemp("desk_server") / "server.log"
    with running_service(people.workspace.root, desk_env, log) as url:
        yield url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver: object, name: str) -> None:
    folder = os.environ.get("TESSERA_DESK_SCREENSHOTS")
    if folder:
        driver.execute_script("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))  # type: ignore[attr-defined]


def _serious_violations(driver: object) -> list[str]:
    """axe-core's serious and critical violations on the current page (its JS ships in axe-selenium-python)."""
    from axe_selenium_python import Axe

    axe = Axe(driver)
    axe.inject()
    found = axe.run()["violations"]
    return [
        f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def _login(driver: object, server: str, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()  # type: ignore[attr-defined]
    driver.get(f"{server}/desk/login")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "api_key").send_keys(key)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()  # type: ignore[attr-defined]
    # A click does not wait for the page it leads to: wait until the login page is left or refuses the key.
    WebDriverWait(driver, 60).until(
        lambda d: not d.current_url.endswith("/desk/login") or d.find_elements(By.CSS_SELECTOR, ".alert")
    )


def _wait_for(driver: object, suffix: str) -> None:
    """Wait until the browser is on a URL ending with `suffix`."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.current_url.endswith(suffix))


def _click_and_wait(driver: object, element: object) -> None:
    """Click what leads to another page and wait until the old page has gone: a click does not always wait for
    the page it leads to, and a page that leads to its own URL (a form posted back) cannot be waited for by URL."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    # The old page is marked, and the new one (a new document has a new window object) loaded when the mark is gone.
    # Asking the old page's nodes instead (`staleness_of`) can fail while the document is torn down: Chromium 156
    # answered "Node with given id does not belong to the document" rather than "stale element" (CI).
    driver.execute_script("window.__tessera_old_page = true")  # type: ignore[attr-defined]
    element.click()  # type: ignore[attr-defined]
    loaded = "return window.__tessera_old_page === undefined && document.readyState === 'complete'"
    wait = WebDriverWait(
        driver, 60, ignored_exceptions=(WebDriverException,)
    )  # e.g. a script during the swap
    wait.until(lambda d: d.execute_script(loaded))


def _search(driver: object, server: str, query: str) -> list[str]:
    """The customer ids the search page lists for a query typed into its box, in order."""
    from selenium.webdriver.common.by import By

    driver.get(f"{server}/desk/search")  # type: ignore[attr-defined]
    box = driver.find_element(By.ID, "q")  # type: ignore[attr-defined]
    box.send_keys(query)
    _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#search-form button"))  # type: ignore[attr-defined]
    links = driver.find_elements(By.CSS_SELECTOR, ".hit a")  # type: ignore[attr-defined]
    return [a.get_attribute("href").rsplit("/", 1)[1] for a in links]


def test_a_wrong_scope_key_is_refused(browser: object, server: str) -> None:
    from selenium.webdriver.common.by import By

    _login(browser, server, EVENTS_KEY)
    assert "lacks the `read` scope" in browser.find_element(By.CSS_SELECTOR, ".alert").text  # type: ignore[attr-defined]
    browser.get(f"{server}/desk/search?q=smith")  # type: ignore[attr-defined]
    assert browser.current_url.endswith("/desk/login")  # type: ignore[attr-defined]


def test_login_search_and_the_360_page(browser: object, server: str, people: People) -> None:
    from selenium.webdriver.common.by import By

    _login(browser, server, READ_KEY)
    assert browser.current_url.endswith("/desk/search")  # type: ignore[attr-defined]
    cookie = browser.get_cookie("tessera_desk")  # type: ignore[attr-defined]
    assert cookie and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert _serious_violations(browser) == []
    for query in (
        "jon smiht",
        "john.smith@example.com",
        "07700 900123",
        "+44 7700-900-123",
        "6337000000017",
        people.john_order,
        people.john_source_id,
    ):
        assert _search(browser, server, query)[:1] == [people.john], query
    _search(browser, server, "jon smiht")
    _screenshot(browser, "search")
    assert _serious_violations(browser) == []
    browser.find_element(By.CSS_SELECTOR, ".hit a").click()  # type: ignore[attr-defined]
    _wait_for(browser, f"/desk/customers/{people.john}")
    for section in ("golden", "scores", "offer", "consent", "identities", "timeline"):
        assert browser.find_element(By.ID, section).is_displayed(), section  # type: ignore[attr-defined]
    assert "same email address" in browser.find_element(By.ID, "identities").text  # type: ignore[attr-defined]
    _screenshot(browser, "customer")
    assert _serious_violations(browser) == []
    browser.set_window_size(390, 844)  # a phone
    try:
        browser.refresh()  # type: ignore[attr-defined]
        _screenshot(browser, "customer-phone")
        width = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
        assert width <= 400, "the 360 page scrolls sideways on a phone"
    finally:
        browser.set_window_size(1280, 1000)  # type: ignore[attr-defined]


def test_a_form_post_without_the_csrf_token_is_refused(browser: object, server: str) -> None:
    from selenium.webdriver.common.by import By

    _login(browser, server, READ_KEY)
    # The logout form with its token removed, as a forged cross-site form would be.
    browser.execute_script(  # type: ignore[attr-defined]
        "document.querySelector('form[action=\"/desk/logout\"] input[name=csrf_token]').remove()"
    )
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/desk/logout'] button"))  # type: ignore[attr-defined]
    assert "CSRF" in browser.find_element(By.CSS_SELECTOR, ".alert").text  # type: ignore[attr-defined]
    browser.get(f"{server}/desk/search")  # type: ignore[attr-defined]
    assert browser.current_url.endswith("/desk/search")  # type: ignore[attr-defined]  # still logged in
