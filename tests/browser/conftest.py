"""Browser tests: a real gunicorn on the test database, driven by Debian's headless Chromium
through Playwright's sync API (Playwright's own browser download is never used).

The session tenants alpha and beta are committed, so the server sees them; the tests only read
them and log in through the server. Mark every module ``pytest.mark.browser``. On a failure the
page is saved as a screenshot, and its path is printed with the test's output.

Two constraints shape the fixtures:
- pytest-django creates the test database only when a selected test asks for it; a browser test
  uses it only through the server, so every test here gets ``django_db`` added (otherwise running
  this folder alone would provision the session tenants in the real database).
- Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses ORM
  calls while one runs (SynchronousOnlyOperation). So Playwright lives per test and stops before
  the test's database transaction is rolled back, and tests here do not use the ORM themselves.
"""
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.processes import web_server

CHROMIUM = "/usr/bin/chromium"
# Quiet, offline Chromium: no sandbox (containers, root), no GPU, and none of its own traffic
# to Google services, so every request a test sees comes from the page.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000  # generous: CI machines run several suites at once
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Server:
    port: int
    log_path: Path

    def host(self, slug):
        return f"{slug}.localhost:{self.port}"

    def url(self, slug, path="/"):
        return f"http://{self.host(slug)}{path}"

    def log_tail(self, chars=3000):
        return self.log_path.read_text(errors="replace")[-chars:]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.django_db)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def server(django_db_setup, tmp_path_factory):
    """gunicorn serving the test database (with the committed session tenants)."""
    log_path = tmp_path_factory.mktemp("web") / "gunicorn.log"
    with web_server(log_path) as port:
        yield Server(port, log_path)


@pytest.fixture
def browser(server):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_options():
    """Options for the test's browser context; override (or parametrise) in a test module."""
    return {"locale": "zh-CN", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def context(browser, browser_options):
    context = browser.new_context(**browser_options)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context, request, server):
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # Not pytest's tmp_path: its numbered folders are pruned by any later run on the machine.
        folder = Path(tempfile.gettempdir()) / "kam-browser-failures"
        folder.mkdir(exist_ok=True)
        path = folder / (re.sub(r"[^\w.-]+", "_", request.node.nodeid) + ".png")
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"\nscreenshot of the failed page ({page.url}): {path}")
        except Exception as exc:  # the page may be gone; the test's own failure matters more
            print(f"\nno screenshot: {exc}")
        print(f"server log ({server.log_path}), last lines:\n{server.log_tail()}")


@pytest.fixture
def log_in(page, server):
    """Submit the real login form of ``info``'s tenant and wait for the page that answers."""

    def log_in(info, password=None):
        page.goto(server.url(info.slug, "/login/"))
        page.fill("#id_username", info.admin_email)
        page.fill("#id_password", password or info.admin_password)
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        return page

    return log_in
