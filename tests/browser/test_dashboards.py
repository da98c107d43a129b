"""The dashboards in a real browser: an HQ user opens the dashboard from the menu, clicks down to
a province, then a city, then the customer list, and the numbers match at every step (a child's
row in its parent's ranking equals the child's own tiles; the city's customers tile equals the
customer list's total). The charts are drawn by the locally served Chart.js, and the page fits a
390 px wide phone.

The data is written through the services before the test (committed, so the server sees it) in a
tree of its own, the roll-ups are recomputed synchronously, and everything is removed afterwards
(the roll-ups recomputed again), so the session tenant ``alpha`` is left as it was.
"""
import re
import secrets
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from kam import history
from key_accounts import services
from key_accounts.history import TRACKED, event_model
from key_accounts.models import BillingRecord, Customer
from org_hierarchy import services as org_services
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit, OrgUnitParentPeriod
from permissions.models import Membership, Role
from permissions.scope import invalidate_scopes
from reporting import engine
from reporting import services as rollups
from tests.conftest import django_db_setup_tenants

pytestmark = pytest.mark.browser

PASSWORD = "dashboard-browser-pass-9"
PHONE = {"width": 390, "height": 844}
# Per city: (customers, of them churned); P1 also owns a customer itself.
CITIES = {"P1": {"C11": (3, 1), "C12": (2, 0)}, "P2": {"C21": (4, 0)}}


@pytest.fixture(scope="module")
def tree(django_db_setup, django_db_blocker):
    """HQ -> P1 (C11, C12), P2 (C21) under a level set of their own, customers in every city
    (one churned in C11, one owned by P1 itself), three months of billing, and an HQ analyst."""
    prefix = f"bd{secrets.token_hex(3)}"
    started = timezone.now()
    schema = django_db_setup_tenants["alpha"].schema_name
    with django_db_blocker.unblock(), schema_context(schema):
        rank = 20000 + secrets.randbelow(3000) * 3  # a free band: ranks are unique, at most 32767
        levels = [org_services.level_create(actor="pytest", code=f"{prefix}-{name}", name=f"{prefix} {name}", rank=rank + i)
                  for i, name in enumerate(["hq", "province", "city"])]
        hq = org_services.unit_create(actor="pytest", code=f"{prefix}-HQ", name=f"{prefix} 总部", level=levels[0])
        units = {"HQ": hq}
        ids = []
        this_month = engine.window()[1]
        months = [engine.add_months(this_month, offset) for offset in (-2, -1, 0)]
        for province, cities in CITIES.items():
            units[province] = org_services.unit_create(actor="pytest", code=f"{prefix}-{province}",
                                                       name=f"{prefix} 省{province}", level=levels[1], parent=hq)
            for city, (count, churned) in cities.items():
                units[city] = org_services.unit_create(actor="pytest", code=f"{prefix}-{city}",
                                                       name=f"{prefix} 市{city}", level=levels[2], parent=units[province])
                for index in range(count):
                    status = "churned" if index < churned else "active"
                    ids.append(services.customer_create(actor="pytest", data={
                        "name": f"{prefix} {city} 客户{index}", "org_unit": units[city], "status": status}).pk)
        ids.append(services.customer_create(actor="pytest", data={"name": f"{prefix} 省P1 直属客户", "org_unit": units["P1"]}).pk)
        with history.acting("pytest", via="billing"):
            for number, pk in enumerate(ids):
                customer = Customer.objects.get(pk=pk)
                account = services.billing_account_save(actor="pytest", customer=customer, data={"number": f"{prefix}-{pk}"})
                BillingRecord.objects.bulk_create(
                    BillingRecord(account=account, customer=customer, month=month,
                                  revenue=Decimal(1000 + 137 * number + 11 * i), arrears=Decimal(number % 3 * 50))
                    for i, month in enumerate(months)
                )
        user = get_user_model().objects.create_user(username=f"{prefix}-hq@example.com", password=PASSWORD)
        Membership.objects.create(user=user, unit=hq, role=Role.objects.get(code="hq_analyst"))
        invalidate_scopes()
        rollups.recompute()  # what the nightly job and the refresh tasks keep current
        unit_ids = {code: unit.pk for code, unit in units.items()}
    yield SimpleNamespace(prefix=prefix, units=unit_ids, login=SimpleNamespace(
        slug="alpha", admin_email=user.username, admin_password=PASSWORD))
    # Module scope: this runs after the tests' transactions were rolled back, so it commits.
    with django_db_blocker.unblock(), schema_context(schema):
        Customer.objects.filter(pk__in=ids).delete()
        for model, lookup in TRACKED:
            event_model(model).objects.filter(**{f"{lookup}__in": ids}).delete()
        get_user_model().objects.filter(pk=user.pk).delete()
        OrgUnitParentPeriod.objects.filter(unit__code__startswith=prefix).delete()
        for unit in OrgUnit.objects.filter(code__startswith=prefix).order_by("-depth"):  # children first
            unit.delete()
        OrgLevel.objects.filter(code__startswith=prefix).delete()
        OrgAuditEntry.objects.filter(at__gte=started).delete()
        invalidate_scopes()
        rollups.recompute()


def tiles(page):
    """The tiles' raw values by metric."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid^="tile-"]')]
        .map(el => [el.dataset.testid.slice(5), el.dataset.value]))""")


def ranking_row(page, unit_id):
    row = page.locator(f'[data-testid="ranking"] tr[data-unit="{unit_id}"]')
    expect(row).to_have_count(1)
    return row.evaluate("""row => Object.fromEntries([...row.querySelectorAll('[data-metric]')]
        .map(cell => [cell.dataset.metric, cell.dataset.value]))""")


def expect_dashboard_of(page, unit_id):
    expect(page.get_by_test_id("dashboard-unit")).to_have_attribute("data-unit", str(unit_id))


def test_an_hq_user_drills_down_to_the_customer_list_and_the_numbers_match(page, server, log_in, tree):
    units = tree.units
    log_in(tree.login)
    with page.expect_navigation():
        page.get_by_test_id("reports-menu").click()
    expect_dashboard_of(page, units["HQ"])
    canvas = page.locator("#chart-revenue")
    expect(canvas).to_have_attribute("data-chart-ready", "true")  # Chart.js, served by us, drew it
    assert page.evaluate("Chart.getChart(document.getElementById('chart-revenue')).data.labels.length") == 12
    hq = tiles(page)
    assert hq["customers"] == str(sum(n for cities in CITIES.values() for n, _c in cities.values()) + 1)

    steps = [("HQ", "P1"), ("P1", "C11")]
    for parent, child in steps:
        row = ranking_row(page, units[child])
        with page.expect_navigation():
            page.locator(f'tr[data-unit="{units[child]}"] [data-testid="drill-down"]').click()
        expect_dashboard_of(page, units[child])
        shown = tiles(page)
        for metric, value in row.items():
            assert shown[metric] == value, (parent, child, metric)
        crumbs = page.get_by_test_id("breadcrumbs").locator("[data-unit]")
        expect(crumbs).to_have_count(len(steps[: steps.index((parent, child)) + 1]) + 1)

    city = tiles(page)
    assert (city["customers"], city["churned"], city["active"]) == ("3", "1", "2")
    expect(page.get_by_test_id("no-children")).to_be_visible()
    with page.expect_navigation():
        page.get_by_test_id("leaf-customer-list").click()
    assert "/customers/" in page.url and f"unit={units['C11']}" in page.url
    count = page.get_by_test_id("customer-count").inner_text()
    assert re.search(r"\d+", count).group() == city["customers"], count
    expect(page.locator("#customer-results tr[data-customer]")).to_have_count(int(city["customers"]))

    # The churned figure links to the list narrowed to churned customers, with the same total.
    page.go_back()
    expect_dashboard_of(page, units["C11"])
    with page.expect_navigation():
        page.locator('[data-testid="tile-churned"] a').click()
    assert re.search(r"\d+", page.get_by_test_id("customer-count").inner_text()).group() == city["churned"]


@pytest.mark.parametrize("browser_options", [{"locale": "zh-CN", "viewport": PHONE, "is_mobile": True, "has_touch": True}])
def test_the_dashboard_fits_a_phone(page, server, log_in, tree, browser_options):
    log_in(tree.login)
    page.goto(server.url("alpha", f"/reports/?unit={tree.units['P1']}"))
    expect_dashboard_of(page, tree.units["P1"])
    expect(page.locator("#chart-customers")).to_have_attribute("data-chart-ready", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The tiles wrap: two a row, none past the screen's edge.
    boxes = [page.locator(f'[data-testid="tile-{name}"]').bounding_box() for name in ("customers", "new_customers", "revenue")]
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] for box in boxes)
    assert boxes[0]["y"] < boxes[2]["y"]  # the third tile is on a second row
    # The ranking scrolls inside its own box.
    table = page.get_by_test_id("ranking")
    expect(table).to_be_visible()
    assert page.evaluate("""() => { const box = document.querySelector('[data-testid="ranking"]').parentElement;
        return getComputedStyle(box).overflowX; }""") == "auto"
