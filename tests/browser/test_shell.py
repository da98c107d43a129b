"""The page shell in a real browser: languages, a phone-sized screen, assets served by us only."""
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}


def _switch_language(page, code):
    with page.expect_navigation():
        page.select_option("#language-select", code)


def test_language_switch_changes_the_visible_strings(page, server, alpha, log_in):
    log_in(alpha)
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("logout")).to_have_text("退出登录")
    expect(page.get_by_test_id("welcome")).to_contain_text("欢迎")

    _switch_language(page, "en")
    expect(page).to_have_url(server.url("alpha", "/"))  # back on the same page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("logout")).to_have_text("Log out")
    expect(page.get_by_test_id("welcome")).to_contain_text("Welcome")
    expect(page.get_by_role("link", name="Open the API documentation")).to_be_visible()

    page.reload()  # the choice is kept (a cookie), not just this one response
    expect(page.get_by_test_id("logout")).to_have_text("Log out")

    _switch_language(page, "zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_test_id("logout")).to_have_text("退出登录")
    expect(page.get_by_role("link", name="查看 API 文档")).to_be_visible()


def test_language_switch_on_the_login_page(page, server, alpha):
    page.goto(server.url("alpha", "/login/"))
    expect(page.get_by_label("邮箱")).to_be_visible()
    _switch_language(page, "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()


@pytest.mark.parametrize("browser_options", [{"locale": "zh-CN", "viewport": PHONE, "is_mobile": True, "has_touch": True}])
def test_phone_viewport_collapses_the_navbar_behind_a_toggler(page, server, alpha, log_in, browser_options):
    log_in(alpha)
    toggler = page.locator(".navbar-toggler")
    logout = page.get_by_test_id("logout")
    expect(toggler).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "false")
    expect(logout).to_be_hidden()
    assert _scroll_width(page) <= PHONE["width"]

    toggler.click()
    expect(toggler).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#main-nav")).to_have_class(re.compile(r"\bshow\b"))  # the animation has ended
    expect(logout).to_be_visible()
    expect(page.locator("#language-select")).to_be_visible()
    expect(page.get_by_role("link", name="首页")).to_be_visible()
    assert _scroll_width(page) <= PHONE["width"]

    toggler.click()
    expect(logout).to_be_hidden()


@pytest.mark.parametrize("browser_options", [{"locale": "en-US", "viewport": PHONE, "is_mobile": True}])
@pytest.mark.parametrize("path", ["/login/", "/no-such-page/"])
def test_phone_viewport_never_scrolls_sideways(page, server, alpha, path, browser_options):
    page.goto(server.url("alpha", path))
    expect(page.locator("main h1")).to_be_visible()
    assert _scroll_width(page) <= PHONE["width"]


def _scroll_width(page):
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_request_leaves_the_server_and_every_asset_loads(page, server, alpha, log_in):
    requests, responses = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda response: responses.append(response))

    log_in(alpha)
    page.goto(server.url("alpha", "/no-such-page/"))
    page.goto(server.url("alpha", "/"))
    page.wait_for_load_state("networkidle")

    strangers = [url for url in requests if not url.startswith("data:") and urlsplit(url).netloc != server.host("alpha")]
    assert requests and not strangers, f"requests to other hosts: {strangers}"
    assets = {urlsplit(r.url).path: r.status for r in responses if r.request.resource_type in ("stylesheet", "script")}
    assert set(assets) >= {
        "/static/vendor/bootstrap/css/bootstrap.min.css", "/static/kam/app.css",
        "/static/vendor/bootstrap/js/bootstrap.bundle.min.js", "/static/vendor/htmx/htmx.min.js", "/static/kam/app.js",
    }
    assert all(status == 200 for status in assets.values()), assets
    # ...and they took effect: Bootstrap's styles and both libraries are live in the page.
    assert page.evaluate("typeof window.bootstrap === 'object' && typeof window.htmx === 'object'")
    navbar_colour = page.evaluate("getComputedStyle(document.querySelector('.navbar')).backgroundColor")
    assert navbar_colour == "rgb(13, 110, 253)"  # Bootstrap's primary blue


def test_keyboard_users_can_skip_to_the_content(page, server, alpha, log_in):
    log_in(alpha)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="跳至主要内容")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url("alpha", "/#main"))
    expect(page.locator("main")).to_be_focused()
