"""Logging in and out through the real pages, and one tenant's session on another's host."""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_admin_logs_in_and_lands_on_home_with_tenant_and_user(page, server, alpha, log_in):
    page.goto(server.url("alpha", "/"))
    expect(page).to_have_url(server.url("alpha", "/login/?next=/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")

    log_in(alpha)

    expect(page).to_have_url(server.url("alpha", "/"))
    expect(page.get_by_test_id("tenant-name")).to_have_text(alpha.tenant.name)
    expect(page.get_by_test_id("current-user")).to_contain_text(alpha.admin_email)
    expect(page.get_by_test_id("welcome")).to_contain_text("欢迎")
    expect(page).to_have_title(re.compile(re.escape(alpha.tenant.name)))


def test_wrong_password_shows_the_error_and_stays_logged_out(page, server, alpha, log_in):
    log_in(alpha, password="not-the-password")

    expect(page).to_have_url(server.url("alpha", "/login/"))
    expect(page.get_by_test_id("login-error")).to_have_text("邮箱或密码不正确，请重试。")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#id_username")).to_have_value(alpha.admin_email)
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    page.goto(server.url("alpha", "/"))
    expect(page).to_have_url(server.url("alpha", "/login/?next=/"))


def test_logout_ends_the_session(page, server, alpha, log_in):
    log_in(alpha)
    with page.expect_navigation():
        page.get_by_test_id("logout").click()

    expect(page).to_have_url(server.url("alpha", "/login/"))
    expect(page.get_by_test_id("current-user")).to_have_count(0)
    page.goto(server.url("alpha", "/"))
    expect(page).to_have_url(server.url("alpha", "/login/?next=/"))


def test_alphas_session_does_not_log_you_into_beta(page, context, server, alpha, beta, log_in):
    log_in(alpha)
    expect(page.get_by_test_id("current-user")).to_contain_text(alpha.admin_email)

    page.goto(server.url("beta", "/"))
    expect(page).to_have_url(server.url("beta", "/login/?next=/"))
    expect(page.get_by_test_id("tenant-name")).to_have_text(beta.tenant.name)
    expect(page.get_by_test_id("current-user")).to_have_count(0)

    # The browser keeps cookies per host anyway; hand alpha's session cookie to beta on purpose.
    session = next(c for c in context.cookies(server.url("alpha")) if c["name"] == "sessionid")
    context.add_cookies([{"name": "sessionid", "value": session["value"], "url": server.url("beta")}])
    page.goto(server.url("beta", "/"))
    expect(page).to_have_url(server.url("beta", "/login/?next=/"))
    expect(page.get_by_test_id("current-user")).to_have_count(0)

    # ...while alpha still knows that session.
    page.goto(server.url("alpha", "/"))
    expect(page).to_have_url(server.url("alpha", "/"))
