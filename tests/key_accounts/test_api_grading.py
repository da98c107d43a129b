"""Grading (R10) and the product catalogue: the rules and products are tenant configuration
(read widely, changed only by those who change customers across the whole tenant), and
``services.regrade`` grades customers from last month's revenue and their active products,
recording history with its actor."""
import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from kam import history
from key_accounts import selectors, services
from key_accounts.models import BillingAccount, BillingRecord, Customer, GradingRule, Product, Subscription
from tests.support.people import make_user, member

from .conftest import client_for, new_customer

RULES = {"strategic": ("100000", 3), "A": ("10000", 2), "B": ("1000", 1)}


@pytest.fixture
def rules(in_alpha):
    return [services.grading_rule_save(actor="system", data={"grade": g, "min_monthly_revenue": Decimal(r), "min_products": n})
            for g, (r, n) in RULES.items()]


def products(count):
    return [Product.objects.get_or_create(code=f"p{i}", defaults={"name": f"产品{i}", "category": "cloud"})[0]
            for i in range(count)]


def bill(customer, month, revenue):
    account, _ = BillingAccount.objects.get_or_create(customer=customer, number=f"BA-{customer.pk}")
    with history.acting("billing-load"):
        BillingRecord.objects.create(account=account, customer=customer, month=month, revenue=Decimal(revenue))


def subscribe(customer, product, start=datetime.date(2024, 1, 1), end=None):
    Subscription.objects.create(customer=customer, product=product, start_date=start, end_date=end)


# --- The service -------------------------------------------------------------------------------

def test_regrade_uses_the_latest_month_and_active_products(tree, people, rules):
    last, earlier = datetime.date(2025, 6, 1), datetime.date(2025, 5, 1)
    p0, p1, p2 = products(3)
    big = new_customer(people.admin, tree.c11, "大客户")
    for product in (p0, p1, p2):
        subscribe(big, product)
    bill(big, last, "150000")
    middling = new_customer(people.admin, tree.c11, "中客户", grade="strategic")
    subscribe(middling, p0), subscribe(middling, p1)
    subscribe(middling, p2, end=datetime.date(2024, 12, 31))  # ended: does not count
    bill(middling, last, "20000")
    bill(middling, earlier, "900000")  # an older month does not count
    small = new_customer(people.admin, tree.c12, "小客户")
    subscribe(small, p0)
    subscribe(small, p0, start=datetime.date(2024, 6, 1))  # the same product twice counts once
    bill(small, last, "999.99")
    idle = new_customer(people.admin, tree.c12, "无账单", grade="A")  # no bill: revenue 0

    moved = services.regrade(actor=people.admin, customers=[big, middling, small, idle])

    grades = dict(Customer.objects.filter(pk__in=[big.pk, middling.pk, small.pk, idle.pk]).values_list("name", "grade"))
    assert grades == {"大客户": "strategic", "中客户": "A", "小客户": "C", "无账单": "C"}
    assert moved == {"strategic": 1, "A": 1, "C": 1}  # 小客户 was C already: not written
    change = next(e for e in selectors.customer_history(middling) if e["label"] == "update")
    assert change["changes"]["grade"] == ["strategic", "A"]
    assert (change["actor_id"], change["via"]) == (people.admin.pk, "regrade")
    assert not [e for e in selectors.customer_history(small) if e["label"] == "update"]


def test_regrade_touches_only_what_the_actor_may_change(tree, people, rules):
    p0, p1 = products(2)
    mine, theirs = new_customer(people.admin, tree.c11, "本市"), new_customer(people.admin, tree.c21, "外省")
    for customer in (mine, theirs):
        subscribe(customer, p0), subscribe(customer, p1)
        bill(customer, datetime.date(2025, 6, 1), "50000")
    assert services.regrade(actor=people.city) == {"A": 1}
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert (mine.grade, theirs.grade) == ("A", "C")
    assert services.regrade(actor=people.hq) == {}  # analysts change nothing
    assert services.regrade(actor="system") == {"A": 1}  # a trusted caller: everything
    theirs.refresh_from_db()
    assert theirs.grade == "A"


def test_without_rules_everyone_is_grade_c(tree, people):
    customer = new_customer(people.admin, tree.c11, "客户", grade="A")
    assert services.regrade(actor="system", customers=Customer.objects.filter(pk=customer.pk)) == {"C": 1}


def test_rules_and_products_need_customer_change_across_the_tenant(tree, people, rules):
    with pytest.raises(PermissionDenied):
        services.grading_rule_save(actor=people.province, rule=rules[0], data={"min_products": 1})
    with pytest.raises(PermissionDenied):
        services.product_save(actor=people.city, data={"code": "x", "name": "x", "category": "iot"})
    hq_manager = make_user("hqm")
    member(hq_manager, tree.hq, "provincial_manager")  # changes customers everywhere
    assert services.grading_rule_save(actor=hq_manager, rule=rules[0], data={"min_products": 4}).min_products == 4


# --- The API -----------------------------------------------------------------------------------

def post(client, path, data):
    return client.post(path, data, content_type="application/json")


def test_grading_rules_api(in_alpha, tree, people, rules):
    city, admin = client_for(in_alpha, people.city), client_for(in_alpha, people.admin)
    listed = city.get("/api/v1/grading-rules/").json()["results"]
    assert [(r["grade"], r["min_monthly_revenue"], r["min_products"]) for r in listed] == [
        ("strategic", "100000.00", 3), ("A", "10000.00", 2), ("B", "1000.00", 1)]
    assert post(city, "/api/v1/grading-rules/", {"grade": "C"}).status_code == 403
    assert city.patch(f"/api/v1/grading-rules/{rules[0].pk}/", {"min_products": 1},
                      content_type="application/json").status_code == 403

    duplicate = post(admin, "/api/v1/grading-rules/", {"grade": "A", "min_products": 9})
    assert duplicate.status_code == 400 and "grade" in duplicate.json()["error"]["fields"]
    assert post(admin, "/api/v1/grading-rules/", {"grade": "A", "min_products": -1}).status_code == 400
    created = post(admin, "/api/v1/grading-rules/", {"grade": "C", "min_monthly_revenue": "0"})
    assert created.status_code == 201, created.content
    changed = admin.patch(f"/api/v1/grading-rules/{rules[1].pk}/", {"min_monthly_revenue": "12000"},
                          content_type="application/json")
    assert changed.json()["min_monthly_revenue"] == "12000.00"
    assert admin.delete(f"/api/v1/grading-rules/{created.json()['id']}/").status_code == 204
    assert not GradingRule.objects.filter(grade="C").exists()
    nobody = make_user("nobody")  # no membership: no customers module, no customer.view
    assert client_for(in_alpha, nobody).get("/api/v1/grading-rules/").status_code == 404
    from permissions.models import Membership, Role

    viewer = make_user("viewer")  # a membership whose role holds no customer.view
    Membership.objects.create(user=viewer, unit=tree.c11, role=Role.objects.create(
        code="tree-viewer", name="Tree viewer", permissions=["org_unit.view"]))
    assert client_for(in_alpha, viewer).get("/api/v1/grading-rules/").status_code == 403


def test_products_api(in_alpha, tree, people):
    nobody = make_user("nobody")  # every user of the tenant reads the catalogue
    Product.objects.create(code="cloud-1", name="云主机", category="cloud")
    assert [p["code"] for p in client_for(in_alpha, nobody).get("/api/v1/products/").json()["results"]] == ["cloud-1"]
    city, admin = client_for(in_alpha, people.city), client_for(in_alpha, people.admin)
    assert post(city, "/api/v1/products/", {"code": "iot-1", "name": "物联网卡", "category": "iot"}).status_code == 403
    created = post(admin, "/api/v1/products/", {"code": "iot-1", "name": "物联网卡", "category": "iot"})
    assert created.status_code == 201, created.content
    for bad, field in (({"code": "iot-1", "name": "重复", "category": "iot"}, "code"),
                       ({"code": "has space", "name": "x", "category": "iot"}, "code"),
                       ({"code": "x-1", "name": "x", "category": "fax"}, "category")):
        response = post(admin, "/api/v1/products/", bad)
        assert response.status_code == 400 and field in response.json()["error"]["fields"], bad
    pk = created.json()["id"]
    renamed = admin.patch(f"/api/v1/products/{pk}/", {"name": "物联网卡 2"}, content_type="application/json")
    assert renamed.json()["name"] == "物联网卡 2"
    assert city.get(f"/api/v1/products/{pk}/").json()["code"] == "iot-1"
    assert city.get("/api/v1/products/999999/").status_code == 404
