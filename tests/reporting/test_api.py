"""The reporting API (/api/v1/reports/...): figures, trend, ranking, products, groups.

Every figure is trimmed to the caller's "report.view" scope: a unit outside it answers 404 like a
missing one, a subtree figure is only given for a unit the caller covers, and an object grant on
one customer reveals no aggregate. Figures match the engine's rows and add up across levels.
"""
from decimal import Decimal

import pytest

from permissions import services as perm_services
from reporting import services

from .conftest import this_month
from tests.support.people import client_for, make_user

FIGURES = "/api/v1/reports/figures/"
TREND = "/api/v1/reports/trend/"
RANKING = "/api/v1/reports/ranking/"
PRODUCTS = "/api/v1/reports/products/"
GROUPS = "/api/v1/reports/groups/"


def ok(response):
    assert response.status_code == 200, response.content
    return response.json()


def revenue_of(index):
    # tests/reporting/conftest.py ``billed``: customer i of archive.all() bills 100 + 10 i a month.
    return Decimal(100 + 10 * index)


ALL = sum(revenue_of(i) for i in range(6))  # c11, c12, c21, group (P2), member11 (C11), member21 (C21)
P1 = revenue_of(0) + revenue_of(1) + revenue_of(4)
P2 = revenue_of(2) + revenue_of(3) + revenue_of(5)
C11 = revenue_of(0) + revenue_of(4)


def month_param(offset=0):
    return f"{this_month(offset):%Y-%m}"


# --- Scope trimming -----------------------------------------------------------------------

@pytest.mark.parametrize("who, default_unit, revenue", [("hq", "HQ", ALL), ("province", "P1", P1), ("city", "C11", C11)])
def test_each_level_sees_its_own_subtree_by_default(in_alpha, rolled, people, who, default_unit, revenue):
    body = ok(client_for(in_alpha, getattr(people, who)).get(FIGURES))
    assert body["unit"]["code"] == default_unit
    assert Decimal(body["subtree"]["revenue"]) == revenue
    assert body["period"]["month_from"] == body["period"]["month_to"] == month_param()


@pytest.mark.parametrize("who, hidden", [("province", ["hq", "p2", "c21"]), ("city", ["hq", "p1", "p2", "c12", "c21"])])
@pytest.mark.parametrize("url", [FIGURES, TREND, RANKING, PRODUCTS, GROUPS])
def test_units_outside_the_scope_answer_like_missing_ones(in_alpha, rolled, people, tree, who, hidden, url):
    client = client_for(in_alpha, getattr(people, who))
    missing = client.get(url, {"unit": 999999})
    assert missing.status_code == 404
    for name in hidden:
        response = client.get(url, {"unit": getattr(tree, name).pk})
        assert response.status_code == 404, (url, name)
        assert response.json() == missing.json()


def test_a_province_user_drills_down_only_into_its_cities(in_alpha, rolled, people, tree):
    client = client_for(in_alpha, people.province)
    ranking = ok(client.get(RANKING, {"unit": tree.p1.pk}))
    assert [row["unit"]["code"] for row in ranking["children"]] == ["C11", "C12"]
    assert ok(client.get(RANKING, {"unit": tree.c11.pk}))["children"] == []


def test_an_object_grant_on_a_customer_reveals_no_aggregate(in_alpha, rolled, people, archive, tree, admin):
    outsider = make_user("grantee")  # no membership: no module either, so the reports do not exist
    perm_services.grant_add(actor=admin, user=outsider, obj=archive.c21, action="view")
    assert client_for(in_alpha, outsider).get(FIGURES).status_code == 404
    # A city user granted a customer elsewhere still sees only its own city's figures.
    perm_services.grant_add(actor=admin, user=people.city, obj=archive.c21, action="view")
    client = client_for(in_alpha, people.city)
    assert client.get(FIGURES, {"unit": tree.c21.pk}).status_code == 404
    assert Decimal(ok(client.get(FIGURES))["subtree"]["revenue"]) == C11
    [group] = ok(client.get(GROUPS))["groups"]  # the member C11 serves, not the granted customer's group part
    assert Decimal(group["revenue"]) == revenue_of(4)


def test_a_switched_off_module_hides_the_reports(in_alpha, rolled, people, tree):
    perm_services.module_set(actor="system", module="reporting", level=tree.levels["city"], enabled=False)
    assert client_for(in_alpha, people.city).get(FIGURES).status_code == 404
    assert client_for(in_alpha, people.province).get(FIGURES).status_code == 200


def test_without_report_permission_the_api_refuses(in_alpha, rolled, tree):
    from permissions.models import Role

    role = Role.objects.create(code="viewer-only", name="Viewer", permissions=["customer.view"])
    user = make_user("noreport")
    from permissions.models import Membership

    Membership.objects.create(user=user, unit=tree.hq, role=role)
    assert client_for(in_alpha, user).get(FIGURES).status_code == 403


# --- Figures add up ---------------------------------------------------------------------------

def test_hq_figures_are_own_plus_the_provinces_at_every_step(in_alpha, rolled, people, tree):
    client = client_for(in_alpha, people.hq)
    for unit in (tree.hq, tree.p1, tree.p2):
        body = ok(client.get(RANKING, {"unit": unit.pk}))
        subtree = ok(client.get(FIGURES, {"unit": unit.pk}))["subtree"]
        for metric in ("customers", "active", "churned", "subscriptions", "billed_customers", "new_customers"):
            assert subtree[metric] == body["own"][metric] + sum(row[metric] for row in body["children"]), metric
        for metric in ("revenue", "arrears", "discount"):
            total = Decimal(body["own"][metric]) + sum(Decimal(row[metric]) for row in body["children"])
            assert Decimal(subtree[metric]) == total, metric
    ranking = ok(client.get(RANKING, {"unit": tree.hq.pk, "metric": "revenue"}))
    assert [(r["unit"]["code"], Decimal(r["revenue"])) for r in ranking["children"]] == [("P2", P2), ("P1", P1)]
    ascending = ok(client.get(RANKING, {"unit": tree.hq.pk, "metric": "revenue", "order": "asc"}))
    assert [r["unit"]["code"] for r in ascending["children"]] == ["P1", "P2"]


def test_figures_over_a_period_add_flows_and_keep_the_last_months_stock(in_alpha, rolled, people):
    client = client_for(in_alpha, people.hq)
    body = ok(client.get(FIGURES, {"month_from": month_param(-2), "month_to": month_param()}))["subtree"]
    assert Decimal(body["revenue"]) == 3 * ALL
    assert body["customers"] == 6 and body["churned"] == 1 and body["lost_customers"] == 1
    # ARPU: revenue / subscription-months; ARPA: revenue / billed-customer-months.
    subscription_months = 2 + 3 + 2 + 3  # c11: 2 products (one from -1), member21 -2..-1, group -2..0
    assert Decimal(body["arpu"]) == (3 * ALL / subscription_months).quantize(Decimal("0.01"))
    assert Decimal(body["arpa"]) == (3 * ALL / 18).quantize(Decimal("0.01"))


def test_trend_lists_every_month_of_the_period(in_alpha, rolled, people):
    body = ok(client_for(in_alpha, people.hq).get(TREND))
    assert len(body["months"]) == 12 and body["months"][-1]["month"] == month_param()
    assert [Decimal(m["revenue"]) for m in body["months"][-3:]] == [ALL, ALL, ALL]
    assert all(Decimal(m["revenue"]) == 0 for m in body["months"][:-3])
    own = ok(client_for(in_alpha, people.hq).get(TREND, {"part": "own"}))
    assert all(Decimal(m["revenue"]) == 0 for m in own["months"])  # HQ owns no customer


def test_grade_and_industry_filters_narrow_the_rows(in_alpha, rolled, people, archive, admin):
    from key_accounts import services as ka

    ka.customer_update(actor=admin, customer=archive.c11, data={"grade": "A", "industry": "I"})
    services.recompute()
    client = client_for(in_alpha, people.hq)
    graded = ok(client.get(FIGURES, {"grade": "A"}))["subtree"]
    assert Decimal(graded["revenue"]) == revenue_of(0) and graded["customers"] == 1
    both = ok(client.get(FIGURES, {"grade": ["A", "C"], "industry": "I,"}))["subtree"]
    assert Decimal(both["revenue"]) == ALL
    assert ok(client.get(FIGURES, {"grade": "B"}))["subtree"]["customers"] == 0
    by_grade = ok(client.get(FIGURES, {"by": "grade"}))["breakdown"]
    assert {row["grade"]: row["customers"] for row in by_grade} == {"A": 1, "C": 5}


def test_product_figures_give_holders_and_penetration(in_alpha, rolled, people, product, tree):
    client = client_for(in_alpha, people.hq)
    body = ok(client.get(PRODUCTS))
    by_code = {row["product"]["code"]: row["subtree"] for row in body["products"]}
    # This month: c11 holds the line, c11 and the group the cloud; 6 customers, c12 churned.
    assert (by_code[product.code]["holders"], by_code[product.code]["customers"]) == (1, 5)
    assert by_code[product.code]["penetration"] == "0.2000"
    assert (by_code["cloud-1"]["holders"], by_code["cloud-1"]["penetration"]) == (2, "0.4000")
    assert by_code["cloud-1"]["monthly_fee"] == "109.50"
    # Last month member21 still held the line; the customers did not exist yet (created today).
    before = {r["product"]["code"]: r["subtree"] for r in ok(client.get(PRODUCTS, {"month_to": month_param(-1)}))["products"]}
    assert (before[product.code]["holders"], before[product.code]["penetration"]) == (2, None)
    one = ok(client.get(FIGURES, {"product": product.code}))["product"]
    assert one["subtree"]["holders"] == 1 and one["own"]["holders"] == 0  # HQ owns no customer
    trend = ok(client.get(TREND, {"product": product.pk}))["product_months"]
    assert [m["holders"] for m in trend[-3:]] == [2, 2, 1]
    city = ok(client_for(in_alpha, people.city).get(PRODUCTS))["products"]
    assert {r["product"]["code"]: r["own"]["holders"] for r in city} == {product.code: 1, "cloud-1": 1}


@pytest.mark.parametrize("params, field", [
    ({"month_from": "2025-13"}, "month_from"),
    ({"month_from": month_param(), "month_to": month_param(-1)}, "month_from"),
    ({"month_from": month_param(-40)}, "month_from"),
    ({"grade": "Z"}, "grade"),
    ({"product": "no-such-product"}, "product"),
    ({"product": "dl-100m", "grade": "A"}, "product"),
    ({"as_of": "yesterday"}, "as_of"),
])
def test_bad_filters_answer_400_naming_the_field(in_alpha, rolled, people, params, field):
    response = client_for(in_alpha, people.hq).get(FIGURES, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


# --- Groups ---------------------------------------------------------------------------------

def test_group_figures_roll_a_national_account_up_across_provinces(in_alpha, rolled, people, archive, tree):
    client = client_for(in_alpha, people.hq)
    [row] = ok(client.get(GROUPS))["groups"]
    assert row["group"]["id"] == archive.group.pk and row["group"]["national"] is True
    assert Decimal(row["revenue"]) == revenue_of(3) + revenue_of(4) + revenue_of(5)
    split = ok(client.get(GROUPS, {"group": archive.group.pk}))
    assert {r["unit"]["code"]: Decimal(r["revenue"]) for r in split["children"]} == {
        "P1": revenue_of(4), "P2": revenue_of(3) + revenue_of(5)}
    assert Decimal(split["total"]["revenue"]) == Decimal(row["revenue"])
    # The province sees the part of the group its cities serve, nothing of P2's.
    [mine] = ok(client_for(in_alpha, people.province).get(GROUPS))["groups"]
    assert Decimal(mine["revenue"]) == revenue_of(4)
    assert client_for(in_alpha, people.province).get(GROUPS, {"group": 999999}).status_code == 404


# --- Cost ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, params, queries", [
    # Each request: the user (tenant and session come from the cache, the connection is on the schema).
    (FIGURES, {}, 3),  # + the unit, its own and subtree sums (one query)
    (TREND, {}, 3),  # + the unit, subtree sums by month
    (RANKING, {}, 4),  # + the unit, its children (with their levels), their sums and its own
    (FIGURES, {"as_of": "2020-01-01"}, 5),  # + the tree today and its parent periods then
    (GROUPS, {}, 5),  # + the unit, its subtree's units, group sums, the group customers
])
def test_report_queries_are_pinned(in_alpha, rolled, people, url, params, queries, django_assert_num_queries):
    from permissions.scope import _pending

    _pending().clear()  # as after the fixtures' commit: scopes come from the cache
    client = client_for(in_alpha, people.province)
    ok(client.get(url, params))  # the scope is cached from here on
    with django_assert_num_queries(queries):
        ok(client.get(url, params))


@pytest.mark.parametrize("url, params, shape", [
    (FIGURES, {"by": "grade", "product": "dl-100m"}, "FiguresResponse"),
    (TREND, {"product": "dl-100m"}, "TrendResponse"),
    (RANKING, {}, "RankingResponse"),
    (PRODUCTS, {}, "ProductsResponse"),
    (GROUPS, {}, "GroupsResponse"),
])
def test_responses_have_the_shape_the_schema_documents(in_alpha, rolled, people, url, params, shape):
    from reporting.api import serializers

    body = ok(client_for(in_alpha, people.hq).get(url, params))
    serializer = getattr(serializers, shape)(data=body)
    assert serializer.is_valid(), serializer.errors
    assert set(body) == {name for name, field in serializer.fields.items() if field.required or name in body}

    def keys(payload, declared):
        for name, field in declared.fields.items():
            child = getattr(field, "child", field)
            if name in payload and hasattr(child, "fields"):
                for item in payload[name] if isinstance(payload[name], list) else [payload[name]]:
                    assert set(item) <= set(child.fields), (name, set(item) - set(child.fields))
                    keys(item, child)

    keys(body, serializer)
