"""The customer API: CRUD through the services, errors in the API's format, what hangs off a
customer, caller-ID, and the scope every endpoint is narrowed to (ids outside it answer 404,
refusals of what the caller sees answer 403, bad input answers 400 naming the field)."""
import datetime
import json
from decimal import Decimal

import pytest

from kam import history
from key_accounts import selectors, services
from key_accounts.models import BillingAccount, BillingRecord, Contact, Customer, Interaction, Subscription
from tests.support.people import make_user, member

from .conftest import client_for, new_customer

API = "/api/v1/customers/"


def url(customer, tail=""):
    return f"{API}{customer.pk}/{tail}"


def post(client, path, data):
    return client.post(path, data, content_type="application/json")


def patch(client, path, data):
    return client.patch(path, data, content_type="application/json")


def results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids_of(response):
    return {row["id"] for row in results(response)}


def fields_of(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    return error["fields"]


def ids(*customers):
    return {c.pk for c in customers}


@pytest.fixture
def api(in_alpha, people):
    """Logged-in API clients: api.hq, api.province, api.city, api.admin."""
    class Clients:
        hq = client_for(in_alpha, people.hq)
        province = client_for(in_alpha, people.province)
        city = client_for(in_alpha, people.city)
        admin = client_for(in_alpha, people.admin)
    return Clients


# --- List and detail: scope ---------------------------------------------------------------------

def test_each_level_lists_only_its_scope(api, archive):
    assert ids_of(api.hq.get(API)) >= ids(*archive.all())
    assert ids_of(api.province.get(API)) == ids(archive.c11, archive.c12, archive.member11)
    assert ids_of(api.city.get(API)) == ids(archive.c11, archive.member11)


def test_list_rows_carry_unit_manager_and_the_total(api, people, archive):
    services.customer_update(actor=people.admin, customer=archive.c11, data={"account_manager": people.city})
    body = api.city.get(API).json()
    assert body["count"] == 2 and body["next"] is None
    row = next(r for r in body["results"] if r["id"] == archive.c11.pk)
    assert row["org_unit"]["code"] == "C11" and row["account_manager"]["id"] == people.city.pk
    assert row["name"] == "广州市天河科技有限公司" and row["status"] == "active" and row["group"] is None
    member = next(r for r in body["results"] if r["id"] == archive.member11.pk)
    assert member["group"] == archive.group.pk


def test_list_rows_are_what_the_documented_serializer_makes(api, people, archive):
    """The list builds its rows from values() without DRF; CustomerListSerializer stays the
    schema, and its output for the same customers is the same JSON."""
    from key_accounts.api import serializers as s

    people.city.first_name, people.city.last_name = "三", "张"
    people.city.save()
    services.customer_update(actor=people.admin, customer=archive.c11, data={"account_manager": people.city})
    services.customer_update(actor=people.admin, customer=archive.c12, data={"account_manager": people.province})
    body = api.hq.get(f"{API}?page_size=200").json()
    listed = {row["id"]: row for row in body["results"]}
    customers = Customer.objects.filter(pk__in=ids(*archive.all())).select_related("org_unit", "account_manager")
    expected = json.loads(json.dumps(s.CustomerListSerializer(customers, many=True).data))
    assert expected and all(listed[row["id"]] == row for row in expected)
    assert listed[archive.c11.pk]["account_manager"]["name"] == "三 张"


def test_the_page_size_is_capped_and_pages_do_not_overlap(api, tree, people):
    for number in range(5):
        new_customer(people.admin, tree.c11, f"客户{number}")
    first, second = results(api.city.get(f"{API}?page_size=3")), results(api.city.get(f"{API}?page_size=3&page=2"))
    assert len(first) == 3 and len(second) == 2 and not {r["id"] for r in first} & {r["id"] for r in second}
    assert api.city.get(f"{API}?page=9").status_code == 404


def test_detail_outside_the_scope_answers_404_like_a_missing_id(api, archive):
    assert api.city.get(url(archive.c11)).json()["name"] == archive.c11.name
    for path in (url(archive.c21), url(archive.c12), url(archive.group), f"{API}999999999/"):
        response = api.city.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path
    assert api.city.get(f"{API}abc/").status_code == 404


def test_a_group_is_named_only_to_those_who_may_view_it(api, archive):
    assert api.city.get(url(archive.member11)).json()["group"] == {"id": archive.group.pk, "name": None}
    assert api.hq.get(url(archive.member11)).json()["group"] == {"id": archive.group.pk, "name": archive.group.name}


def test_group_viewers_see_the_members_served_elsewhere(in_alpha, tree, archive):
    p2 = make_user("p2")
    member(p2, tree.p2, "provincial_manager")
    client = client_for(in_alpha, p2)
    assert ids_of(client.get(API)) == ids(archive.c21, archive.group, archive.member11, archive.member21)
    assert client.get(url(archive.member11)).status_code == 200
    assert patch(client, url(archive.member11), {"name": "改名"}).status_code == 403  # view only, through the group


def test_a_direct_grant_shows_one_customer_outside_the_scope(in_alpha, people, archive):
    from permissions.services import grant_add

    grant_add(actor="system", user=people.city, obj=archive.c21, action="view")
    client = client_for(in_alpha, people.city)
    assert ids_of(client.get(API)) == ids(archive.c11, archive.member11, archive.c21)
    assert client.get(url(archive.c21)).status_code == 200
    assert patch(client, url(archive.c21), {"name": "x"}).status_code == 403


def test_anonymous_callers_get_401_and_beta_never_sees_alpha(alpha, beta, archive):
    assert alpha.client().get(API).status_code == 401
    beta_admin = beta.admin_client()
    assert beta_admin.get(API).json()["count"] == 0
    assert beta_admin.get(url(archive.c11)).status_code == 404
    assert beta_admin.get(f"/api/v1/caller-id/?number=020-8888-6666").json()["results"] == []


def test_switching_the_module_off_hides_the_api(in_alpha, tree, people, archive):
    from permissions import services as permission_services

    client = client_for(in_alpha, people.city)
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/customers/{id}/history/:" in schema and "/api/v1/caller-id/:" in schema
    permission_services.module_set(actor="system", level=tree.levels["city"], module="customers", enabled=False)
    assert client.get(API).status_code == 404
    assert client.get("/api/v1/caller-id/?number=02088886666").status_code == 404
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/customers/" not in schema and "/api/v1/caller-id/" not in schema


# --- Create, update, delete --------------------------------------------------------------------

def test_create_update_and_delete_write_history_with_the_api_channel(api, tree, people):
    created = post(api.city, API, {"name": "新客户 New Co", "org_unit": tree.c11.pk, "kind": "enterprise",
                                   "credit_code": "91110000100017643K", "phone": "13900001111"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["org_unit"]["id"] == tree.c11.pk and body["credit_code"] == "91110000100017643K"
    customer = Customer.objects.get(pk=body["id"])

    updated = patch(api.city, url(customer), {"grade": "A", "status": "active"})
    assert updated.status_code == 200 and updated.json()["grade"] == "A"
    change = next(e for e in selectors.customer_history(customer) if e["label"] == "update")
    assert change["changes"] == {"grade": ["C", "A"], "status": ["prospect", "active"]}
    assert (change["actor_id"], change["via"], change["unit"]) == (people.city.pk, "api", "C11")

    assert api.city.delete(url(customer)).status_code == 403  # account managers do not delete
    assert api.province.delete(url(customer)).status_code == 204
    assert not Customer.objects.filter(pk=customer.pk).exists()


def test_creating_outside_ones_scope_is_refused(api, tree):
    # An invisible unit is an unknown unit; a visible one where one may not add is a 403.
    assert fields_of(post(api.city, API, {"name": "别处", "org_unit": tree.c21.pk})) == {"org_unit": ["Unknown unit."]}
    assert post(api.city, API, {"name": "上级", "org_unit": tree.p1.pk}).status_code in (400, 403)
    assert post(api.hq, API, {"name": "总部", "org_unit": tree.c11.pk}).status_code == 403  # analysts only view
    assert not Customer.objects.filter(name__in=["别处", "上级", "总部"]).exists()


@pytest.mark.parametrize("data, field", [
    ({"credit_code": "91110000100017644K"}, "credit_code"),  # bad check character
    ({"kind": "individual", "credit_code": "91110000100017643K"}, "credit_code"),
    ({"name": ""}, "name"),
    ({"status": "nonsense"}, "status"),
    ({"grade": "Z"}, "grade"),
    ({"satisfaction": "7"}, "satisfaction"),
    ({"org_unit": "x"}, "org_unit"),
    ({"account_manager": 999999}, "account_manager"),
    ({"group": 999999}, "group"),
])
def test_bad_input_answers_400_naming_the_field(api, tree, data, field):
    before = Customer.objects.count()
    fields = fields_of(post(api.province, API, {"name": "客户", "org_unit": tree.c11.pk, **data}))
    assert field in fields, fields
    assert Customer.objects.count() == before


def test_required_fields_are_named_on_create_but_not_on_patch(api, archive):
    assert set(fields_of(post(api.city, API, {}))) == {"name", "org_unit"}
    assert patch(api.city, url(archive.c11), {"phone": "020-1234 5678"}).status_code == 200
    assert fields_of(patch(api.city, url(archive.c11), {"credit_code": "123"})).keys() == {"credit_code"}


def test_reassigning_needs_assign_at_both_units(api, tree, people, archive):
    assert patch(api.city, url(archive.c11), {"account_manager": people.city.pk}).status_code == 403
    assert fields_of(patch(api.city, url(archive.c11), {"org_unit": tree.c12.pk})) == {"org_unit": ["Unknown unit."]}
    assert patch(api.province, url(archive.c11), {"org_unit": tree.c21.pk}).status_code == 400  # not in P1
    elsewhere = make_user("c21-manager")
    member(elsewhere, tree.c21, "account_manager")
    assert fields_of(patch(api.province, url(archive.c11), {"account_manager": elsewhere.pk})) == {
        "account_manager": ["Unknown user."]}
    assert patch(api.province, url(archive.c11), {"account_manager": people.city.pk}).json()["account_manager"]["id"] == people.city.pk
    assert patch(api.province, url(archive.c11), {"org_unit": tree.c12.pk}).json()["org_unit"]["code"] == "C12"
    archive.c11.refresh_from_db()
    assert archive.c11.org_unit == tree.c12


def test_writes_outside_the_scope_answer_404_and_view_only_403(api, archive):
    assert patch(api.city, url(archive.c21), {"name": "x"}).status_code == 404
    assert api.province.delete(url(archive.c21)).status_code == 404
    # Who may delete nothing anywhere is refused before any id is looked at: no probing either.
    assert api.city.delete(url(archive.c21)).status_code == api.city.delete(f"{API}999999999/").status_code == 403
    assert patch(api.hq, url(archive.c21), {"name": "x"}).status_code == 403
    archive.c21.refresh_from_db()
    assert archive.c21.name == "长沙市岳麓教育局"


def test_put_is_not_offered(api, archive):
    assert api.city.put(url(archive.c11), {}, content_type="application/json").status_code == 405


# --- Around the customer -----------------------------------------------------------------------

def test_contacts_create_update_delete_and_reindex_phones(api, archive):
    created = post(api.city, url(archive.c11, "contacts/"), {"name": "李四", "role": "CIO", "phones": "139 0000 1111"})
    assert created.status_code == 201, created.content
    contact = created.json()
    assert [c["name"] for c in results(api.city.get(url(archive.c11, "contacts/")))] == ["李四"]
    assert api.city.get(url(archive.c11, f"contacts/{contact['id']}/")).json()["role"] == "CIO"
    assert fields_of(patch(api.city, url(archive.c11, f"contacts/{contact['id']}/"), {"email": "bad"})) .keys() == {"email"}
    updated = patch(api.city, url(archive.c11, f"contacts/{contact['id']}/"), {"phones": "13900002222"})
    assert updated.status_code == 200 and updated.json()["phones"] == "13900002222"
    cards = results(api.city.get("/api/v1/caller-id/?number=139-0000-2222"))
    assert [(c["id"], c["contacts"]) for c in cards] == [(archive.c11.pk, ["李四"])]
    assert api.city.delete(url(archive.c11, f"contacts/{contact['id']}/")).status_code == 204
    assert not Contact.objects.filter(pk=contact["id"]).exists()
    labels = [e["label"] for e in selectors.customer_history(archive.c11) if e["model"] == "contact"]
    assert labels == ["delete", "update", "insert"]


def test_a_contact_is_reached_only_through_its_own_customer(api, people, archive):
    other = services.contact_save(actor=people.admin, customer=archive.c21, data={"name": "王五"})
    # Someone else's contact under one's own customer's id: not found, nothing changed.
    assert api.city.get(url(archive.c11, f"contacts/{other.pk}/")).status_code == 404
    assert patch(api.city, url(archive.c11, f"contacts/{other.pk}/"), {"name": "x"}).status_code == 404
    assert api.city.delete(url(archive.c21, f"contacts/{other.pk}/")).status_code == 404
    assert api.hq.delete(url(archive.c21, f"contacts/{other.pk}/")).status_code == 403
    assert post(api.hq, url(archive.c21, "contacts/"), {"name": "x"}).status_code == 403
    assert Contact.objects.get(pk=other.pk).name == "王五"


def test_subscriptions_billing_accounts_and_monthly_billing(api, people, archive, product):
    created = post(api.city, url(archive.c11, "subscriptions/"),
                   {"product": product.pk, "quantity": 2, "monthly_fee": "1999.00", "start_date": "2025-01-01"})
    assert created.status_code == 201, created.content
    assert created.json()["product"]["code"] == "dl-100m"
    assert fields_of(post(api.city, url(archive.c11, "subscriptions/"),
                          {"product": 999999, "start_date": "2025-01-01"})) == {"product": ["Unknown product."]}
    assert "end_date" in fields_of(post(api.city, url(archive.c11, "subscriptions/"),
                                        {"product": product.pk, "start_date": "2025-02-01", "end_date": "2025-01-01"}))
    [row] = results(api.city.get(url(archive.c11, "subscriptions/")))
    assert row["quantity"] == 2 and row["monthly_fee"] == "1999.00"

    account = post(api.city, url(archive.c11, "billing-accounts/"), {"number": "GZ-0001", "name": "主账户"})
    assert account.status_code == 201, account.content
    assert [a["number"] for a in results(api.city.get(url(archive.c11, "billing-accounts/")))] == ["GZ-0001"]
    billing_account = BillingAccount.objects.get(pk=account.json()["id"])
    with history.acting("test"):
        for month, revenue in ((datetime.date(2025, 1, 1), "100.50"), (datetime.date(2025, 2, 1), "200.00")):
            BillingRecord.objects.create(account=billing_account, customer=archive.c11, month=month,
                                         revenue=Decimal(revenue), arrears=Decimal("5"))
    months = api.city.get(url(archive.c11, "billing/")).json()
    assert [(m["month"], m["revenue"], m["arrears"]) for m in months] == [
        ("2025-01-01", "100.50", "5.00"), ("2025-02-01", "200.00", "5.00")]
    assert [m["month"] for m in api.city.get(url(archive.c11, "billing/?months=1")).json()] == ["2025-02-01"]
    assert fields_of(api.city.get(url(archive.c11, "billing/?months=99"))) .keys() == {"months"}
    for tail in ("subscriptions/", "billing-accounts/", "billing/"):
        assert api.city.get(url(archive.c21, tail)).status_code == 404, tail


def test_interactions_form_one_timeline_with_the_recorder(api, people, archive):
    contact = services.contact_save(actor=people.admin, customer=archive.c11, data={"name": "李四"})
    first = post(api.city, url(archive.c11, "interactions/"),
                 {"channel": "field_visit", "subject": "拜访", "occurred_at": "2025-03-01T10:00:00+08:00",
                  "contact": contact.pk, "satisfaction": 5})
    assert first.status_code == 201, first.content
    assert first.json()["contact"] == {"id": contact.pk, "name": "李四"}
    assert first.json()["recorded_by"]["id"] == people.city.pk
    second = post(api.city, url(archive.c11, "interactions/"), {"channel": "call_centre", "subject": "来电"})
    assert second.status_code == 201
    timeline = results(api.city.get(url(archive.c11, "interactions/")))
    assert [row["channel"] for row in timeline] == ["call_centre", "field_visit"]  # newest first

    other = services.contact_save(actor=people.admin, customer=archive.c21, data={"name": "外人"})
    assert fields_of(post(api.city, url(archive.c11, "interactions/"),
                          {"channel": "web", "subject": "x", "contact": other.pk})).keys() == {"contact"}
    assert "channel" in fields_of(post(api.city, url(archive.c11, "interactions/"), {"channel": "fax", "subject": "x"}))
    assert "satisfaction" in fields_of(post(api.city, url(archive.c11, "interactions/"),
                                            {"channel": "web", "subject": "x", "satisfaction": 9}))
    assert post(api.city, url(archive.c21, "interactions/"), {"channel": "web", "subject": "x"}).status_code == 404
    assert Interaction.objects.filter(customer=archive.c11).count() == 2


def test_history_lists_every_change_newest_first_and_pages(api, people, archive):
    for grade in ("A", "B", "strategic"):
        services.customer_update(actor=people.city, customer=archive.c11, data={"grade": grade}, via="api")
    body = api.city.get(url(archive.c11, "history/?page_size=2")).json()
    assert body["count"] == 4 and len(body["results"]) == 2
    newest = body["results"][0]
    assert newest["changes"] == {"grade": ["B", "strategic"]} and newest["actor_id"] == people.city.pk
    assert newest["model"] == "customer" and newest["label"] == "update" and newest["via"] == "api"
    assert api.city.get(url(archive.c21, "history/")).status_code == 404


# --- Caller-ID ---------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["020-8888 6666", "+86 20 8888 6666", "88886666", "0086 (20) 88886666"])
def test_caller_id_finds_a_number_in_any_format(api, archive, number):
    body = api.city.get("/api/v1/caller-id/", {"number": number}).json()
    [card] = body["results"]
    assert card["id"] == archive.c11.pk and card["org_unit"]["code"] == "C11"
    assert card["grade"] == "C" and card["status"] == "active" and card["contacts"] == []


def test_caller_id_shows_only_what_the_caller_may_see(api, people, archive):
    services.contact_save(actor=people.admin, customer=archive.c21, data={"name": "王五", "phones": "13800138000"})
    # 13800138000 is c12's main phone (C12) and a contact of c21 (C21).
    assert {c["id"] for c in results(api.hq.get("/api/v1/caller-id/?number=13800138000"))} == ids(archive.c12, archive.c21)
    assert {c["id"] for c in results(api.province.get("/api/v1/caller-id/?number=13800138000"))} == ids(archive.c12)
    assert results(api.city.get("/api/v1/caller-id/?number=13800138000")) == []
    hq_cards = {c["id"]: c for c in results(api.hq.get("/api/v1/caller-id/?number=138-0013-8000"))}
    assert hq_cards[archive.c21.pk]["contacts"] == ["王五"] and hq_cards[archive.c12.pk]["contacts"] == []


def test_caller_id_needs_a_number(api):
    assert fields_of(api.city.get("/api/v1/caller-id/")).keys() == {"number"}
    assert fields_of(api.city.get("/api/v1/caller-id/?number=12")).keys() == {"number"}
