"""The customer pages: each level sees only its scope's customers, forms validate and write
history with the actor, buttons follow permissions, and the list and 360 pages run a fixed
number of queries whatever the page size."""
import datetime
import os
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kam import history
from key_accounts import selectors, services
from key_accounts.models import BillingRecord, Contact, Customer, Interaction, Subscription
from permissions import services as permission_services
from permissions.scope import invalidate_scopes
from tests.support.people import make_user, member

from .conftest import client_for, new_customer

LIST = "/customers/"


def detail(customer):
    return f"/customers/{customer.pk}/"


def listed(response):
    """Ids of the customers in a list page's (or results fragment's) table."""
    assert response.status_code == 200, response.status_code
    return {int(pk) for pk in re.findall(r'data-customer="(\d+)"', response.content.decode())}


def ids(*customers):
    return {c.pk for c in customers}


# --- Scope -----------------------------------------------------------------------------------

def test_each_level_lists_only_its_scope(alpha, tree, people, archive):
    everyone = ids(*archive.all())
    seen = {
        "hq": listed(client_for(alpha, people.hq).get(LIST)) & everyone,
        "province": listed(client_for(alpha, people.province).get(LIST)),
        "city": listed(client_for(alpha, people.city).get(LIST)),
    }
    assert seen["hq"] == everyone
    assert seen["province"] == ids(archive.c11, archive.c12, archive.member11)
    assert seen["city"] == ids(archive.c11, archive.member11)


def test_a_customer_outside_the_scope_answers_404_and_view_only_users_403_on_edit(alpha, tree, people, archive, product):
    city, hq = client_for(alpha, people.city), client_for(alpha, people.hq)
    contact = services.contact_save(actor=people.admin, customer=archive.c21, data={"name": "王五"})
    assert city.get(detail(archive.c11)).status_code == 200
    for url in (detail(archive.c21), f"{detail(archive.c21)}history/", f"{detail(archive.c21)}edit/",
                f"/customers/contacts/{contact.pk}/edit/", f"/customers/contacts/{contact.pk}/delete/",
                f"{detail(archive.c21)}contacts/new/", "/customers/999999999/"):
        assert city.get(url).status_code == 404, url
    # The HQ analyst sees everything and changes nothing: no buttons, and 403 on every form.
    page = hq.get(detail(archive.c21))
    assert page.status_code == 200 and b'data-testid="edit-customer"' not in page.content
    assert b'data-testid="add-contact"' not in page.content
    for url in (f"{detail(archive.c21)}edit/", f"/customers/contacts/{contact.pk}/edit/", f"{detail(archive.c21)}contacts/new/"):
        response = hq.get(url)
        assert response.status_code == 403 and b'data-testid="forbidden"' in response.content, url
    response = hq.post(f"/customers/contacts/{contact.pk}/delete/")
    assert response.status_code == 403
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert hq.get("/customers/new/").status_code == 403
    # The account manager gets the buttons on their own customer.
    page = city.get(detail(archive.c11))
    assert b'data-testid="edit-customer"' in page.content and b'data-testid="add-contact"' in page.content


def test_the_group_and_its_members_show_as_far_as_the_user_may_see(alpha, tree, people, archive):
    p2_manager = make_user("p2")
    member(p2_manager, tree.p2, "provincial_manager")
    page = client_for(alpha, p2_manager).get(detail(archive.group)).content.decode()
    members = set(map(int, re.findall(r'data-member="(\d+)"', page)))
    assert members == ids(archive.member11, archive.member21)
    # The city serving one branch sees the branch, not a link to the group it may not open.
    page = client_for(alpha, people.city).get(detail(archive.member11)).content.decode()
    shown = re.search(r'data-testid="customer-group">(.*?)</dd>', page, re.S).group(1)
    assert f'href="/customers/{archive.group.pk}/"' not in page and archive.group.name not in shown
    page = client_for(alpha, p2_manager).get(detail(archive.member11)).content.decode()
    assert f'href="/customers/{archive.group.pk}/"' in page


def test_pages_answer_404_when_the_customers_module_is_off_for_the_users_level(alpha, tree, people, archive):
    permission_services.module_set(actor="system", module="customers", level=tree.levels["city"], enabled=False)
    city = client_for(alpha, people.city)
    assert city.get(LIST).status_code == 404
    assert city.get(detail(archive.c11)).status_code == 404
    assert b'data-testid="customers-menu"' not in city.get("/").content
    assert b'data-testid="customers-menu"' in client_for(alpha, people.province).get("/").content


def test_anonymous_visitors_go_to_the_login_page(alpha, archive):
    response = alpha.client().get(detail(archive.c11))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_menu_offers_customers_only_to_holders_of_customer_view(alpha, tree, people):
    reader = make_user("reader")
    permission_services.role_create(actor="system", code="tree_reader", name="Tree reader", permissions=["org_unit.view"])
    member(reader, tree.p1, "tree_reader")
    assert b'data-testid="customers-menu"' in client_for(alpha, people.city).get("/").content
    assert b'data-testid="customers-menu"' not in client_for(alpha, reader).get("/").content


# --- List: filters, sorting, paging ---------------------------------------------------------

def test_the_list_offers_new_customer_and_import_only_to_those_who_may_add(alpha, tree, people, archive):
    city = client_for(alpha, people.city).get(LIST).content.decode()
    assert 'data-testid="add-customer"' in city and 'href="/customers/imports/new/"' in city
    hq = client_for(alpha, people.hq).get(LIST).content.decode()
    assert 'data-testid="add-customer"' not in hq and 'data-testid="import-link"' not in hq


def test_the_list_filters_searches_and_sorts(alpha, tree, people, archive):
    hq = client_for(alpha, people.hq)
    everyone = ids(*archive.all())
    assert listed(hq.get(LIST, {"q": "南山"})) == ids(archive.c12)
    assert listed(hq.get(LIST, {"q": "8000"})) & everyone == ids(archive.c12)  # phone by suffix
    assert listed(hq.get(LIST, {"kind": "government"})) & everyone == ids(archive.c21)
    assert listed(hq.get(LIST, {"status": "active"})) & everyone == ids(archive.c11)
    assert listed(hq.get(LIST, {"unit": tree.p2.pk})) & everyone == ids(archive.c21, archive.group, archive.member21)
    assert listed(hq.get(LIST, {"national": "true"})) & everyone == ids(archive.group)
    assert listed(hq.get(LIST, {"group": archive.group.pk})) == ids(archive.member11, archive.member21)
    page = hq.get(LIST, {"q": "集团", "ordering": "name"}).content.decode()
    shown = [int(pk) for pk in re.findall(r'data-customer="(\d+)"', page)]
    assert shown == sorted(shown, key=lambda pk: Customer.objects.get(pk=pk).name)
    assert 'aria-sort="ascending"' in page
    # The filter form sends every field, those left at "All" empty.
    every_field = {"q": "南山", "kind": "", "grade": "", "status": "", "industry": "", "unit": "", "manager": "",
                   "national": "", "potential": ""}
    assert listed(hq.get(LIST, every_field)) == ids(archive.c12)
    # A bad filter value says so instead of failing.
    response = hq.get(LIST, {"grade": "Z"})
    assert response.status_code == 200 and b'data-testid="filter-error"' in response.content


def test_htmx_gets_only_the_results_and_the_export_links_carry_the_filters(alpha, tree, people, archive):
    response = client_for(alpha, people.hq).get(LIST, {"q": "南山", "page": "1"}, HTTP_HX_REQUEST="true",
                                                 HTTP_HX_TARGET="customer-results")
    body = response.content.decode()
    assert listed(response) == ids(archive.c12)
    assert "<html" not in body and 'id="customer-filters"' not in body
    link = re.search(r'href="([^"]+)"[^>]*data-testid="export-csv"', body).group(1)
    assert link.startswith("/customers/exports/?") and "q=%E5%8D%97%E5%B1%B1" in link and "page=" not in link
    assert "format=csv" in link
    # Account managers hold no customer.export: no export buttons for them.
    assert b'data-testid="export-csv"' not in client_for(alpha, people.city).get(LIST).content


def test_the_list_pages_by_50_and_counts_them_all(alpha, tree, people, admin):
    for number in range(53):
        new_customer(admin, tree.c12, f"分页客户{number:02d}")
    province = client_for(alpha, people.province)
    first = province.get(LIST, {"q": "分页客户"})
    assert len(listed(first)) == 50 and b"53 customers" in first.content
    assert len(listed(province.get(LIST, {"q": "分页客户", "page": 2}))) == 3


# --- Forms write through the services, with history -----------------------------------------

def test_the_create_form_shows_field_errors_and_creates_with_history(alpha, tree, people):
    city = client_for(alpha, people.city)
    form = city.get("/customers/new/").content.decode()
    units = set(map(int, re.findall(r'<option value="(\d+)"', form.split('name="org_unit"')[1].split("</select>")[0])))
    assert units == {tree.c11.pk}  # only where they may add
    data = {"name": "佛山市顺德电器有限公司", "kind": "enterprise", "grade": "B", "status": "prospect",
            "org_unit": tree.c11.pk, "credit_code": "91110000100017644K"}
    response = city.post("/customers/new/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="id_credit_code_error"' in body and "is-invalid" in body
    assert not Customer.objects.filter(name=data["name"]).exists()
    # A unit outside the scope is not among the choices.
    response = city.post("/customers/new/", {**data, "credit_code": "", "org_unit": tree.c21.pk})
    assert response.status_code == 200 and 'id="id_org_unit_error"' in response.content.decode()
    response = city.post("/customers/new/", {**data, "credit_code": "91110000100017643K"})
    customer = Customer.objects.get(name=data["name"])
    assert response.status_code == 302 and response["Location"] == detail(customer)
    created = selectors.customer_history(customer)[-1]
    assert (created["label"], created["actor_id"], created["unit"], created["via"]) == ("insert", people.city.pk, "C11", "web")


def test_the_edit_form_saves_only_changes_and_account_managers_cannot_reassign(alpha, tree, people, archive):
    city = client_for(alpha, people.city)
    customer = archive.c11
    form = city.get(f"{detail(customer)}edit/").content.decode()
    assert re.search(r'<select name="org_unit"[^>]*disabled', form)
    data = {"name": customer.name, "kind": customer.kind, "grade": "A", "status": "active", "phone": customer.phone,
            "org_unit": tree.c12.pk}  # ignored: the field is disabled for them
    response = city.post(f"{detail(customer)}edit/", data)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.grade == "A" and customer.org_unit == tree.c11
    update = selectors.customer_history(customer)[0]
    assert update["changes"] == {"grade": ["C", "A"]} and update["actor_id"] == people.city.pk
    # The province may move it within its subtree.
    province = client_for(alpha, people.province)
    response = province.post(f"{detail(customer)}edit/", {**data, "org_unit": tree.c12.pk})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.org_unit == tree.c12


def test_saving_the_edit_form_never_drops_a_group_or_manager_the_user_cannot_choose(alpha, tree, people, archive):
    # The city serving a branch may not see its group: the form leaves the group alone.
    city = client_for(alpha, people.city)
    branch = archive.member11
    form = city.get(f"{detail(branch)}edit/").content.decode()
    assert 'name="group"' not in form and f">{archive.group.name}<" not in form
    response = city.post(f"{detail(branch)}edit/", {"name": branch.name, "kind": branch.kind, "grade": "B", "status": "active"})
    assert response.status_code == 302, re.findall(r'invalid-feedback[^>]*>([^<]*)<|data-testid="form-error">([^<]*)<', response.content.decode())
    branch.refresh_from_db()
    assert branch.group == archive.group and branch.grade == "B"
    # A manager from outside the province stays when the province edits something else.
    far = make_user("far")
    member(far, tree.c21, "account_manager")
    services.customer_update(actor=people.admin, customer=archive.c11, data={"account_manager": far})
    customer = archive.c11
    response = client_for(alpha, people.province).post(f"{detail(customer)}edit/", {
        "name": customer.name, "kind": customer.kind, "grade": customer.grade, "status": "abnormal",
        "org_unit": customer.org_unit_id, "account_manager": far.pk, "phone": customer.phone})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.account_manager == far and customer.status == "abnormal"


def test_contacts_subscriptions_and_interactions_are_added_edited_and_deleted_from_the_360_page(
    alpha, tree, people, archive, product
):
    city = client_for(alpha, people.city)
    customer = archive.c11
    base = detail(customer)
    response = city.post(f"{base}contacts/new/", {"name": "陈经理", "role": "CIO", "phones": "139 0000 1111", "email": "bad"})
    assert response.status_code == 200 and 'id="id_email_error"' in response.content.decode()
    response = city.post(f"{base}contacts/new/", {"name": "陈经理", "role": "CIO", "phones": "139 0000 1111", "is_primary": "on"})
    assert response.status_code == 302 and response["Location"] == f"{base}#contacts"
    contact = Contact.objects.get(customer=customer, name="陈经理")
    assert customer.pk in set(selectors.caller_id(user=people.city, number="13900001111").values_list("pk", flat=True))
    response = city.post(f"/customers/contacts/{contact.pk}/edit/", {"name": "陈总", "role": "CIO", "phones": contact.phones})
    assert response.status_code == 302
    response = city.post(f"{base}subscriptions/new/", {"product": product.pk, "quantity": 2, "monthly_fee": "1200.00",
                                                         "start_date": "2025-03-01", "end_date": "2025-01-01"})
    assert response.status_code == 200 and not Subscription.objects.filter(customer=customer).exists()
    response = city.post(f"{base}subscriptions/new/", {"product": product.pk, "quantity": 2, "monthly_fee": "1200.00",
                                                         "start_date": "2025-03-01"})
    assert response.status_code == 302
    response = city.post(f"{base}interactions/new/", {"occurred_at": "2025-04-02T10:30", "channel": "field_visit",
                                                        "contact": contact.pk, "subject": "季度回访", "satisfaction": "4"})
    assert response.status_code == 302
    interaction = Interaction.objects.get(customer=customer)
    assert (interaction.recorded_by, interaction.satisfaction, interaction.contact) == (people.city, 4, contact)
    page = city.get(base).content.decode()
    assert "陈总" in page and "季度回访" in page and product.name in page
    response = city.post(f"/customers/contacts/{contact.pk}/delete/")
    assert response.status_code == 302 and not Contact.objects.filter(pk=contact.pk).exists()
    history_page = city.get(f"{base}history/").content.decode()
    actor = people.city.get_username()
    entries = selectors.customer_history(customer)
    assert {(e["model"], e["label"]) for e in entries if e["actor_id"] == people.city.pk} >= {
        ("contact", "insert"), ("contact", "update"), ("contact", "delete"), ("subscription", "insert"),
        ("interaction", "insert"),
    }
    assert actor in history_page and "陈经理" in history_page and "陈总" in history_page


def test_the_history_tab_shows_who_where_and_each_field_before_and_after(alpha, tree, people, archive):
    services.customer_update(actor=people.province, customer=archive.c11,
                             data={"grade": "strategic", "org_unit": tree.c12, "is_potential_key_account": True})
    page = client_for(alpha, people.province).get(f"{detail(archive.c11)}history/").content.decode()
    first = page.split('data-history="')[1]
    assert people.province.get_username() in first and "acting at P1" in first
    row = re.search(r'data-change="grade"[^>]*>(.*?)</tr>', first, re.S).group(1)
    assert "Grade C" in row and "Strategic" in row  # choice labels, not codes
    row = re.search(r'data-change="org_unit"[^>]*>(.*?)</tr>', first, re.S).group(1)
    assert tree.c11.name in row and tree.c12.name in row  # unit names, not ids
    assert 'data-change="is_potential_key_account"' in first


# --- Query counts ----------------------------------------------------------------------------

@pytest.fixture
def settled(django_capture_on_commit_callbacks):
    """Let scopes be cached as in production: membership changes made by the test mark them
    pending (never cached) until their transaction commits, which a test's never does."""

    def settle():
        with django_capture_on_commit_callbacks(execute=True):
            invalidate_scopes()

    return settle


def _queries(client, url, **extra):
    client.get(url, **extra)  # warm the scope cache and the session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    if os.environ.get("SHOW_QUERIES"):
        print(url, *[q["sql"][:200] for q in queries.captured_queries], sep="\n")
    return len(queries)


def _fill(admin, unit, count, start):
    for number in range(start, start + count):
        new_customer(admin, unit, f"计数客户{number:03d}")


@pytest.mark.parametrize("who", ["hq", "province", "city"])
def test_the_list_page_runs_a_fixed_number_of_queries(alpha, tree, people, admin, settled, who):
    settled()
    client = client_for(alpha, getattr(people, who))
    _fill(admin, tree.c11, 3, 0)
    few = _queries(client, LIST)
    few_htmx = _queries(client, LIST, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-results")
    _fill(admin, tree.c11, 57, 3)
    assert len(listed(client.get(LIST, {"q": "计数客户"}))) == 50
    assert _queries(client, LIST) == few
    assert _queries(client, LIST, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-results") == few_htmx
    # Tenant routing 3, session and user 2; the list itself: grants, groups, count, rows (the
    # scope comes from Redis); the filters' unit and manager choices 3 more.
    assert few <= 12 and few_htmx <= 9, (few, few_htmx)


def _surround(customer, admin, product, count):
    account = services.billing_account_save(actor=admin, customer=customer, data={"number": f"BA{customer.pk}"})
    for n in range(count):
        contact = services.contact_save(actor=admin, customer=customer, data={"name": f"联系人{n}", "phones": f"1390000{n:04d}"})
        services.subscription_save(actor=admin, customer=customer, data={
            "product": product, "monthly_fee": Decimal("100"), "start_date": datetime.date(2024, 1, 1)})
        services.interaction_save(actor=admin, customer=customer, data={
            "channel": "call_centre", "occurred_at": timezone.now(), "subject": f"来电{n}", "contact": contact,
            "satisfaction": 5})
    with history.acting(admin):
        BillingRecord.objects.bulk_create(
            BillingRecord(account=account, customer=customer, month=datetime.date(2024, 1 + m % 12, 1), revenue=1000 + m)
            for m in range(min(count, 12))
        )


def test_the_360_page_runs_a_fixed_number_of_queries(alpha, tree, people, admin, archive, product, settled):
    settled()
    client = client_for(alpha, people.city)
    small, large = archive.c11, new_customer(admin, tree.c11, "大客户")
    _surround(small, admin, product, 3)
    _surround(large, admin, product, 60)
    assert _queries(client, detail(small)) == _queries(client, detail(large)) <= 13
    page = client.get(detail(large)).content.decode()
    assert page.count("data-contact=") == 60 and page.count("data-interaction=") == 60
    assert 'id="revenue-chart-data"' in page and page.count("<tr><td>2024-") == 12
    # The group's page lists its members without a query per member.
    p2_manager = make_user("p2")
    member(p2_manager, tree.p2, "provincial_manager")
    settled()
    group_client = client_for(alpha, p2_manager)
    few = _queries(group_client, detail(archive.group))
    for number in range(25):
        new_customer(admin, tree.c21, f"集团成员{number}", group=archive.group)
    assert _queries(group_client, detail(archive.group)) == few


def test_the_history_tab_runs_a_fixed_number_of_queries(alpha, tree, people, admin, archive, product, settled):
    settled()
    client = client_for(alpha, people.city)
    _surround(archive.c11, admin, product, 2)
    few = _queries(client, f"{detail(archive.c11)}history/")
    _surround(archive.member11, admin, product, 2)
    for n in range(20):
        services.customer_update(actor=admin, customer=archive.c11, data={"address": f"天河路{n}号"})
    services.contact_save(actor=admin, customer=archive.c11, data={"name": "再来一位"})
    assert _queries(client, f"{detail(archive.c11)}history/") == few


# --- The account-manager picker --------------------------------------------------------------

def test_the_manager_picker_offers_only_people_of_the_scope_and_a_few_at_a_time(alpha, tree, people, archive):
    crowd = [make_user(f"am{number:02d}", first_name=f"{number:02d}", last_name="张") for number in range(60)]
    for user in crowd:
        member(user, tree.c11, "account_manager")
    stranger = make_user("far", first_name="远", last_name="王")
    member(stranger, tree.c21, "account_manager")
    city = client_for(alpha, people.city)

    def options(response):
        assert response.status_code == 200
        return set(map(int, re.findall(r'<option value="(\d+)"', response.content.decode())))

    found = options(city.get("/customers/people/", {"search": "张07"}))
    assert found == {crowd[7].pk}
    assert options(city.get("/customers/people/", {"search": "远"})) == set()  # C21 is outside the scope
    assert len(options(city.get("/customers/people/"))) == 50
    kept = options(city.get("/customers/people/", {"search": "张07", "manager": crowd[59].pk}))
    assert kept == {crowd[7].pk, crowd[59].pk}
    # The list page renders 50 of them, the chosen one included, and a search box for the rest.
    page = city.get(LIST, {"manager": crowd[59].pk}).content.decode()
    select = page.split('name="manager"')[1].split("</select>")[0]
    shown = set(map(int, re.findall(r'<option value="(\d+)"', select)))
    assert crowd[59].pk in shown and stranger.pk not in shown and len(shown) <= 51
    assert 'data-testid="person-search"' in page
    # Submitting someone outside the scope on the form is refused on the field.
    form = {"name": "新客户", "kind": "enterprise", "grade": "C", "status": "prospect", "org_unit": tree.c11.pk,
            "account_manager": stranger.pk}
    response = city.post("/customers/new/", form)
    assert response.status_code == 200 and 'id="id_account_manager_error"' in response.content.decode()
    response = city.post("/customers/new/", {**form, "account_manager": crowd[59].pk})
    assert response.status_code == 302
    assert Customer.objects.get(name="新客户").account_manager == crowd[59]
