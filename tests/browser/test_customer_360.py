"""The customer pages in a real browser: the list's search updates the results in place, and a
customer 360 page with data draws its revenue chart, lists its timeline newest first, and its
history tab shows a change the test makes through the edit form.

The data is written through the services before the test (committed, so the server sees it) in
a unit of its own, and removed again afterwards with its history rows, so the session tenant
``alpha`` is left as it was.
"""
import datetime
import secrets
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from kam import history
from key_accounts import services
from key_accounts.history import TRACKED, event_model
from key_accounts.models import BillingRecord, Customer, Product
from org_hierarchy import services as org_services
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit
from permissions.scope import invalidate_scopes
from tests.conftest import django_db_setup_tenants

pytestmark = pytest.mark.browser

MONTHS = 6
PHONE = {"width": 375, "height": 667}


@pytest.fixture(scope="module")
def archive(django_db_setup, django_db_blocker):
    """A unit with three customers; the first with contacts, subscriptions, six months of billing
    and interactions on three channels."""
    prefix = f"bt{secrets.token_hex(3)}"
    started = timezone.now()
    with django_db_blocker.unblock(), schema_context(django_db_setup_tenants["alpha"].schema_name):
        level = org_services.level_create(actor="pytest", code=f"{prefix}-top", name=f"{prefix} 顶层",
                                          rank=30000 + secrets.randbelow(2000))
        unit = org_services.unit_create(actor="pytest", code=f"{prefix}-U", name=f"{prefix} 营业部", level=level)
        product, _ = Product.objects.get_or_create(code="bt-line", defaults={"name": "专线 1G", "category": "dedicated_line"})
        customer = services.customer_create(actor="pytest", data={
            "name": f"{prefix} 华南智能制造有限公司", "org_unit": unit, "grade": "C", "status": "active",
            "phone": "020-3888 0000",
        })
        other = services.customer_create(actor="pytest", data={"name": f"{prefix} 华东物流集团", "org_unit": unit})
        unrelated = services.customer_create(actor="pytest", data={"name": "华南某贸易公司", "org_unit": unit})
        contacts = [
            services.contact_save(actor="pytest", customer=customer, data={"name": name, "role": role, "phones": phones})
            for name, role, phones in [("周总", "CEO", "138 0000 0001"), ("刘工", "CIO", "139 0000 0002")]
        ]
        services.subscription_save(actor="pytest", customer=customer, data={
            "product": product, "quantity": 4, "monthly_fee": Decimal("3500"), "start_date": datetime.date(2025, 1, 1)})
        account = services.billing_account_save(actor="pytest", customer=customer, data={"number": f"{prefix}-BA1"})
        with history.acting("pytest"):
            BillingRecord.objects.bulk_create(
                BillingRecord(account=account, customer=customer, month=datetime.date(2025, month, 1),
                              revenue=Decimal(14000 + 250 * month), arrears=Decimal(800 if month == 3 else 0))
                for month in range(1, MONTHS + 1)
            )
        now = timezone.now()
        subjects = []
        for days, channel, subject in [(30, "business_hall", "开户办理"), (12, "call_centre", "故障报修"), (2, "field_visit", "季度回访")]:
            services.interaction_save(actor="pytest", customer=customer, data={
                "channel": channel, "occurred_at": now - datetime.timedelta(days=days), "subject": subject,
                "contact": contacts[0], "satisfaction": 4})
            subjects.append(subject)
    yield SimpleNamespace(prefix=prefix, customer_id=customer.pk, subjects=subjects[::-1])
    # Module scope: this runs after the test's transaction was rolled back, so it commits.
    with django_db_blocker.unblock(), schema_context(django_db_setup_tenants["alpha"].schema_name):
        ids = [customer.pk, other.pk, unrelated.pk]
        Customer.objects.filter(pk__in=ids).delete()
        Product.objects.filter(code="bt-line", subscriptions__isnull=True).delete()
        for model, lookup in TRACKED:
            event_model(model).objects.filter(**{f"{lookup}__in": ids}).delete()
        OrgUnit.objects.filter(code__startswith=prefix).delete()
        OrgLevel.objects.filter(code__startswith=prefix).delete()
        OrgAuditEntry.objects.filter(at__gte=started).delete()
        invalidate_scopes()


def test_the_list_search_updates_the_results_in_place(page, server, alpha, log_in, archive):
    log_in(alpha)
    with page.expect_navigation():
        page.get_by_test_id("customers-menu").click()
    expect(page.locator("main h1")).to_be_visible()
    rows = page.locator("#customer-results tr[data-customer]")
    expect(rows.locator("a", has_text="华南某贸易公司")).to_have_count(1)
    page.fill("#id_q", archive.prefix)
    expect(rows).to_have_count(2)
    page.select_option("#id_status", "active")  # a select narrows at once too
    expect(rows).to_have_count(1)
    page.select_option("#id_status", "")
    expect(rows).to_have_count(2)
    page.fill("#id_q", f"{archive.prefix} 华南")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-customer", str(archive.customer_id))
    assert "q=" in page.url  # the search is in the address, so it can be shared and reloaded
    page.reload()
    expect(rows).to_have_count(1)


def test_a_customer_360_page_shows_its_chart_timeline_and_history(page, server, alpha, log_in, archive):
    log_in(alpha)
    page.goto(server.url("alpha", f"/customers/{archive.customer_id}/"))
    expect(page.get_by_test_id("customer-name")).to_contain_text(archive.prefix)

    # The revenue chart: Chart.js (served by us) drew on the canvas.
    canvas = page.locator("#revenue-chart")
    expect(canvas).to_have_attribute("data-chart-ready", "true")
    assert canvas.bounding_box()["width"] > 200
    assert page.evaluate("Chart.getChart(document.getElementById('revenue-chart')).data.labels.length") == MONTHS
    drawn = page.evaluate("""() => {
        const canvas = document.getElementById('revenue-chart');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return painted;
    }""")
    assert drawn > 1000, drawn

    # Contacts, subscriptions and the timeline, newest first.
    expect(page.locator("[data-contact]")).to_have_count(2)
    expect(page.locator("[data-subscription]")).to_have_count(1)
    timeline = page.get_by_test_id("timeline").locator("[data-interaction] .fw-semibold")
    expect(timeline).to_have_text(archive.subjects)
    expect(page.get_by_test_id("average-satisfaction")).to_have_text("4.0")

    # A change made in the edit form shows on the history tab, field by field, with its author.
    page.get_by_test_id("edit-customer").click()
    page.select_option("#id_grade", "A")
    page.fill("#id_address", "广州市黄埔区科学大道 1 号")
    with page.expect_navigation():
        page.locator("[data-testid=customer-form] button[type=submit]").click()
    expect(page.get_by_test_id("customer-grade")).to_have_attribute("data-grade", "A")
    with page.expect_navigation():
        page.get_by_test_id("tab-history").click()
    newest = page.locator("[data-history]").first
    expect(newest).to_have_attribute("data-label", "update")
    expect(newest.get_by_test_id("history-actor")).to_have_text(alpha.admin_email)
    grade = newest.locator('[data-change="grade"]')
    expect(grade).to_have_attribute("data-from", "C")
    expect(grade).to_have_attribute("data-to", "A")
    expect(newest.locator('[data-change="address"] [data-after]')).to_have_text("广州市黄埔区科学大道 1 号")
    # The creation by the loader is there too, oldest last.
    expect(page.locator("[data-history]").last).to_have_attribute("data-label", "insert")


@pytest.mark.parametrize("browser_options", [{"locale": "zh-CN", "viewport": PHONE, "is_mobile": True, "has_touch": True}])
def test_the_customer_pages_fit_a_phone(page, server, alpha, log_in, archive, browser_options):
    log_in(alpha)
    customer = f"/customers/{archive.customer_id}/"
    for path in ["/customers/", customer, f"{customer}history/", f"{customer}edit/", f"{customer}interactions/new/"]:
        page.goto(server.url("alpha", path))
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
