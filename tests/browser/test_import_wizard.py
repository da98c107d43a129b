"""The import wizard end to end in Chromium: an account manager uploads the IBM sample, keeps
the shipped mapping, chooses their unit, reads the dry-run report, imports, and finds the
customers in the list; then a file with errors shows them row by row and imports nothing.

Everything goes through the real server, so it is committed in ``alpha``; the module's clean-up
removes the unit, the user and what they imported.
"""
import csv
import secrets
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from key_accounts.history import event_model
from key_accounts.models import ColumnMapping, Customer, ImportJob, PhoneNumber
from org_hierarchy.models import OrgLevel, OrgUnit
from permissions.models import Membership, Role
from permissions.scope import invalidate_scopes
from tests.conftest import django_db_setup_tenants
from tests.key_accounts.test_import import IBM

pytestmark = pytest.mark.browser

PASSWORD = "import-wizard-password-1"


@pytest.fixture(scope="module")
def importer(django_db_setup, django_db_blocker):
    """A committed level, unit and account manager there; afterwards all of it and what it imported is removed."""
    tag = f"bi{secrets.token_hex(3)}"
    with django_db_blocker.unblock(), schema_context(django_db_setup_tenants["alpha"].schema_name):
        level = OrgLevel.objects.create(code=tag, name=tag, rank=20000 + secrets.randbelow(12000))
        unit = OrgUnit.objects.add_root({"code": tag.upper(), "name": f"{tag} 导入分公司", "level": level})
        user = get_user_model().objects.create_user(username=f"{tag}@example.com", password=PASSWORD)
        Membership.objects.create(user=user, unit=unit, role=Role.objects.get(code="account_manager"))
        invalidate_scopes()
    yield SimpleNamespace(tag=tag, unit_id=unit.pk, unit_label=str(unit), email=user.username)
    with django_db_blocker.unblock(), schema_context(django_db_setup_tenants["alpha"].schema_name):
        with connection.cursor() as cursor:
            customer, phone = Customer._meta.db_table, PhoneNumber._meta.db_table
            cursor.execute(f"DELETE FROM {phone} WHERE customer_id IN (SELECT id FROM {customer} WHERE org_unit_id = %s)", [unit.pk])
            cursor.execute(f"DELETE FROM {customer} WHERE org_unit_id = %s", [unit.pk])
            cursor.execute(f"DELETE FROM {event_model(Customer)._meta.db_table} WHERE org_unit_id = %s", [unit.pk])
        ImportJob.objects.filter(created_by=user).delete()
        ColumnMapping.objects.filter(created_by=user).delete()
        Membership.objects.filter(user=user).delete()
        user.delete()
        unit.delete()
        level.delete()
        invalidate_scopes()


def log_in(page, server, email):
    page.goto(server.url("alpha", "/login/"))
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def test_the_wizard_imports_the_ibm_sample_and_reports_a_bad_file_row_by_row(page, server, importer, tmp_path):
    log_in(page, server, importer.email)

    # Step 1: from the customer list to the upload form; the IBM file with the shipped mapping.
    page.goto(server.url("alpha", "/customers/"))
    with page.expect_navigation():
        page.get_by_test_id("import-link").click()
    page.set_input_files("#id_file", str(IBM))
    page.select_option("#id_mapping", label="IBM Telco Customer Churn")
    with page.expect_navigation():
        page.get_by_test_id("upload").click()

    # Step 2: the file's columns with the mapping's fields; the unit is the importer's own.
    columns = page.get_by_test_id("map-columns")
    expect(columns).to_contain_text("customerID")
    expect(columns).to_contain_text("7590-VHVEG")
    expect(page.locator("select[data-column='customerID']")).to_have_value("external_id")
    expect(page.locator("select[data-column='Churn']")).to_have_value("status")
    expect(page.locator("#id_unit option[value]:not([value=''])")).to_have_count(1)  # only where they may add
    page.select_option("#id_unit", value=str(importer.unit_id))
    with page.expect_navigation():
        page.get_by_test_id("start-check").click()

    # Step 3: the dry-run report: every row valid, nothing written yet.
    report = page.get_by_test_id("import-report")
    expect(report).to_have_attribute("data-status", "checked")
    expect(page.get_by_test_id("count-rows")).to_have_text("7043")
    expect(page.get_by_test_id("count-created")).to_have_text("7043")
    expect(page.get_by_test_id("count-errors")).to_have_text("0")

    # Step 4: import; the report ends done.
    with page.expect_navigation():
        page.get_by_test_id("commit").click()
    expect(page.get_by_test_id("import-report")).to_have_attribute("data-status", "done")
    expect(page.get_by_test_id("count-created")).to_have_text("7043")
    page.goto(server.url("alpha", "/customers/?q=7590-VHVEG"))
    expect(page.locator("main")).to_contain_text("IBM Telco 7590-VHVEG")

    # A file with errors: the report names each row, column and reason; nothing is imported.
    with open(IBM, newline="", encoding="utf-8") as source:
        header, *rows = list(csv.reader(source))[:4]
    for number, row in enumerate(rows, start=1):
        row[header.index("customerID")] = f"NEW-{number}"
    rows[1][header.index("tenure")] = "abc"  # line 3
    rows[2][header.index("tenure")], rows[2][header.index("TotalCharges")] = "5", " "  # line 4
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows([header, *rows])
    page.goto(server.url("alpha", "/customers/imports/new/"))
    page.set_input_files("#id_file", str(bad))
    page.select_option("#id_mapping", label="IBM Telco Customer Churn")
    with page.expect_navigation():
        page.get_by_test_id("upload").click()
    page.select_option("#id_unit", value=str(importer.unit_id))
    with page.expect_navigation():
        page.get_by_test_id("start-check").click()
    expect(page.get_by_test_id("import-report")).to_have_attribute("data-status", "invalid")
    errors = page.get_by_test_id("import-errors").locator("tbody tr")
    expect(errors).to_have_count(2)
    expect(errors.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(errors.nth(0).locator("td").nth(1)).to_have_text("tenure")
    expect(errors.nth(0).locator("td").nth(3)).to_have_text("abc")
    expect(errors.nth(1).locator("td").nth(0)).to_have_text("4")
    expect(errors.nth(1).locator("td").nth(1)).to_have_text("TotalCharges")
    expect(page.get_by_test_id("commit")).to_have_count(0)
    page.goto(server.url("alpha", "/customers/?q=NEW-1"))
    expect(page.locator("main")).not_to_contain_text("IBM Telco NEW-1")
