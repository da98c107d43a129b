"""The tenant admin builds an org tree and a role in the pages, creates a user holding the role
at a province, and that user, logged in with the password shown once, sees exactly the province.

Everything is made through the UI, so the server commits it; the module's clean-up removes it
again (after the test's own transaction has ended), so the session tenant ``alpha`` is left as
it was for the tests that follow.
"""
import re
import secrets
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from org_hierarchy import services as org_services
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit
from permissions import services as permission_services
from permissions.models import PermissionAuditEntry, Role
from permissions.scope import invalidate_scopes
from tests.conftest import django_db_setup_tenants

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def made(django_db_setup, django_db_blocker):
    """Names for what the test creates (unique per run) and, afterwards, their removal from alpha."""
    prefix = f"bt{secrets.token_hex(3)}"
    made = SimpleNamespace(
        prefix=prefix,
        rank=1000 + secrets.randbelow(20000),  # level ranks are unique per tenant
        email=f"{prefix}.manager@example.com",
        role=f"{prefix}_reader",
        started=timezone.now(),
    )
    yield made
    # Module scope: this runs after the test's transaction was rolled back, so it commits.
    with django_db_blocker.unblock(), schema_context(django_db_setup_tenants["alpha"].schema_name):
        # No service deletes units or users (units are closed, users deactivated, to keep
        # history), so the test's own rows go directly, deepest units first (parent keys protect).
        for unit in OrgUnit.objects.filter(code__startswith=prefix).order_by("-depth"):
            unit.delete()
        get_user_model().objects.filter(username=made.email).delete()
        for role in Role.objects.filter(code=made.role):
            permission_services.role_delete(actor="pytest", role=role)
        for level in OrgLevel.objects.filter(code__startswith=prefix):
            org_services.level_delete(actor="pytest", level=level)
        OrgAuditEntry.objects.filter(at__gte=made.started).delete()
        PermissionAuditEntry.objects.filter(at__gte=made.started).delete()
        invalidate_scopes()


def submit(page, form_selector):
    with page.expect_navigation():
        page.locator(form_selector).locator("button[type=submit]").first.click()


def unit_id(page):
    return re.search(r"/org/units/(\d+)/$", page.url).group(1)


def shown_units(page):
    return page.locator("[data-unit]").evaluate_all("nodes => nodes.map(node => node.dataset.unit)")


def test_the_admin_builds_a_tree_and_a_role_and_the_new_user_sees_exactly_their_subtree(page, server, alpha, log_in, made):
    p = made.prefix
    log_in(alpha)

    # The admin finds the pages in the navigation menu.
    page.get_by_test_id("org-admin-menu").click()
    with page.expect_navigation():
        page.locator(".dropdown-menu a[href='/org/levels/']").click()

    # Levels: HQ, province, city.
    for offset, (code, name) in enumerate([("hq", "总部"), ("province", "省"), ("city", "市")]):
        page.fill("#id_new-code", f"{p}-{code}")
        page.fill("#id_new-name", f"{p} {name}")
        page.fill("#id_new-rank", str(made.rank + offset))
        submit(page, "form:has(#id_new-code)")
        expect(page.locator(f'tr[data-level="{p}-{code}"]')).to_have_count(1)

    # The tree: HQ at the top, two provinces, three cities.
    page.goto(server.url("alpha", "/org/"))
    page.fill("#id_root-code", f"{p}-HQ")
    page.fill("#id_root-name", f"{p} 总部")
    page.select_option("#id_root-level", label=f"{p} 总部")
    submit(page, "form:has(#id_root-code)")
    expect(page.get_by_test_id("unit-code")).to_have_text(f"{p}-HQ")
    hq_url = page.url

    def add_child(code, name, level):
        page.fill("#id_add_child-code", code)
        page.fill("#id_add_child-name", name)
        page.select_option("#id_add_child-level", label=f"{p} {level}")
        submit(page, "[data-testid=form-add_child]")
        expect(page.get_by_test_id("unit-code")).to_have_text(code)
        return page.url

    p1_url = add_child(f"{p}-P1", "江苏省", "省")
    add_child(f"{p}-C11", "南京市", "市")
    page.goto(p1_url)
    add_child(f"{p}-C12", "苏州市", "市")
    page.goto(hq_url)
    add_child(f"{p}-P2", "浙江省", "省")
    add_child(f"{p}-C21", "杭州市", "市")
    page.goto(p1_url)
    p1_id = unit_id(page)
    expect(page.get_by_test_id("children").locator("[data-unit]")).to_have_count(2)

    # Campaigns off for cities: the switch posts through htmx and its cell is swapped in place.
    page.goto(server.url("alpha", "/access/modules/"))
    cell = page.locator(f'[data-module="{p}-city:campaigns"]')
    expect(cell).to_have_attribute("data-enabled", "on")
    url_before = page.url
    cell.get_by_role("switch").click()
    expect(cell).to_have_attribute("data-enabled", "off")
    assert page.url == url_before
    page.reload()
    expect(cell).to_have_attribute("data-enabled", "off")
    expect(page.locator(f'[data-module="{p}-province:campaigns"]')).to_have_attribute("data-enabled", "on")

    # A role that may read the org tree and the users.
    page.goto(server.url("alpha", "/access/roles/"))
    page.fill("#id_role-code", made.role)
    page.fill("#id_role-name", f"{p} 只读")
    submit(page, "form:has(#id_role-code)")
    role_id = re.search(r"/access/roles/(\d+)/$", page.url).group(1)
    for code in ("org_unit.view", "user.view", "membership.view", "report.view"):
        page.check(f'input[name="role-permissions"][value="{code}"]')
    submit(page, "[data-testid=role-form]")
    expect(page.locator('input[name="role-permissions"]:checked')).to_have_count(4)

    # A user holding the role at the first province; the password is shown once.
    page.goto(server.url("alpha", "/access/users/"))
    page.fill("#id_user-email", made.email)
    page.fill("#id_user-last_name", "李")
    page.fill("#id_user-first_name", "娜")
    page.select_option("#id_user-unit", value=p1_id)
    page.select_option("#id_user-role", value=role_id)
    with page.expect_response(lambda response: response.request.method == "POST"):
        page.locator("form:has(#id_user-email) button[type=submit]").click()
    password = page.get_by_test_id("new-password").inner_text().strip()
    assert len(password) >= 12
    expect(page.locator(f'tr[data-user="{made.email}"] [data-membership="{p}-P1:{made.role}"]')).to_have_count(1)

    # The new user logs in and sees exactly the province they were given.
    with page.expect_navigation():
        page.get_by_test_id("logout").click()
    log_in(SimpleNamespace(slug="alpha", admin_email=made.email), password=password)
    expect(page.get_by_test_id("current-user")).to_contain_text(made.email)
    page.goto(server.url("alpha", "/org/"))
    assert shown_units(page) == [f"{p}-P1", f"{p}-C11", f"{p}-C12"]
    city = page.locator(f'[data-unit="{p}-C11"]')
    expect(city).to_be_visible()
    page.locator(f'[data-unit="{p}-P1"] > details > summary').click()  # collapse the province
    expect(city).to_be_hidden()

    # Their menu offers only what the role allows, and nothing outside the province opens.
    page.get_by_test_id("org-admin-menu").click()
    expect(page.locator(".dropdown-menu a")).to_have_count(3)  # org tree, levels, users
    page.goto(hq_url)
    expect(page.locator("main h1")).to_be_visible()
    assert page.locator("[data-testid=unit-code]").count() == 0  # the 404 page
    page.goto(server.url("alpha", "/access/roles/"))
    expect(page.get_by_test_id("forbidden")).to_be_visible()


PHONE = {"width": 375, "height": 667}


@pytest.mark.parametrize("browser_options", [{"locale": "zh-CN", "viewport": PHONE, "is_mobile": True, "has_touch": True}])
def test_the_admin_pages_fit_a_phone(page, server, alpha, log_in, browser_options):
    log_in(alpha)
    page.goto(server.url("alpha", "/access/roles/"))
    role_url = page.locator("[data-role=tenant_admin] a").get_attribute("href")
    for path in ["/org/", "/org/levels/", "/access/roles/", role_url, "/access/users/", "/access/grants/", "/access/modules/"]:
        page.goto(server.url("alpha", path))
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
