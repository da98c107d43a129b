"""Query counts of the customer API are pinned: they do not grow with the page size or with the
data (3 customers or 60, 3 contacts or 60).

Every request pays the user (1; a token is 1 too): the tenant comes from the host cache on a
connection already on its schema (a new connection adds its one ``SET search_path``), the
session from Redis. What the endpoint itself runs is counted on top: the list page is count and
rows (2, 3 with a region filter; the grants come with the cached scope, the group rows inside
the same statements), well inside the issue's 6 per list page.
"""
import datetime
import os
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from key_accounts import services
from permissions.scope import invalidate_scopes

from .conftest import client_for, new_customer

API = "/api/v1/customers/"
REQUEST = 1  # the user; tenant and session from Redis


@pytest.fixture
def settled(django_capture_on_commit_callbacks):
    """Scopes cached as in production (a test's own membership changes would keep them
    pending, computed afresh on every call, until a commit that never comes)."""

    def settle():
        with django_capture_on_commit_callbacks(execute=True):
            invalidate_scopes()

    return settle


def queries(client, url, **extra):
    client.get(url, **extra)  # warm the scope cache
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **extra)
    assert response.status_code == 200, response.content
    if os.environ.get("SHOW_QUERIES"):
        print(url, *[q["sql"][:200] for q in captured.captured_queries], sep="\n")
    return len(captured)


def fill(admin, unit, count, start=0):
    for number in range(start, start + count):
        new_customer(admin, unit, f"计数客户{number:03d}", phone=f"0755-8000 {number:04d}")


# Total queries per list request, by who asks: (plain list, searched, one region).
LIST_QUERIES = {"hq": (3, 3, 4), "province": (3, 3, 4), "city": (3, 3, 4)}


@pytest.mark.parametrize("who", sorted(LIST_QUERIES))
def test_the_list_does_not_grow_with_page_size_or_data(in_alpha, tree, people, settled, who):
    settled()
    client = client_for(in_alpha, getattr(people, who))
    urls = (API, f"{API}?q=计数客户", f"{API}?unit={tree.p1.pk}")
    fill(people.admin, tree.c11, 3)
    few = [queries(client, url) for url in urls]
    fill(people.admin, tree.c11, 57, start=3)
    assert client.get(f"{API}?q=计数客户").json()["count"] == 60
    many = [queries(client, f"{url}{'&' if '?' in url else '?'}page_size={size}") for url in urls for size in (2, 50)]
    assert many == [n for n in few for _size in (2, 50)]
    assert tuple(few) == LIST_QUERIES[who]
    assert max(few) - REQUEST <= 6


def test_a_token_costs_what_a_session_costs(in_alpha, tree, people, settled):
    settled()
    fill(people.admin, tree.c11, 3)
    token = Token.objects.create(user=people.city)
    client = in_alpha.client(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert queries(client, API) == LIST_QUERIES["city"][0]  # the token with its user, in one query


def test_a_connection_on_another_schema_costs_one_search_path_and_no_domain_lookup(in_alpha, tree, people, settled):
    settled()
    client = client_for(in_alpha, people.city)
    queries(client, API)  # the host and the session are cached now
    connection.set_schema_to_public()  # as a request to the platform host leaves it
    with CaptureQueriesContext(connection) as captured:
        assert client.get(API).status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    assert sql[0].startswith("SET search_path") and len(sql) == LIST_QUERIES["city"][0] + 1
    assert not any("tenants_domain" in q for q in sql)


def surround(customer, admin, product, count):
    """``count`` contacts, subscriptions, interactions and history entries around ``customer``."""
    for n in range(count):
        contact = services.contact_save(actor=admin, customer=customer, data={"name": f"联系人{n}", "phones": f"1390000{n:04d}"})
        services.subscription_save(actor=admin, customer=customer, data={
            "product": product, "monthly_fee": Decimal("100"), "start_date": datetime.date(2024, 1, 1)})
        services.interaction_save(actor=admin, customer=customer, data={
            "channel": "call_centre", "occurred_at": timezone.now(), "subject": f"来电{n}", "contact": contact})
        services.billing_account_save(actor=admin, customer=customer, data={"number": f"BA{customer.pk}-{n}"})


DETAIL_TAILS = ("", "history/", "contacts/", "subscriptions/", "billing-accounts/", "billing/", "interactions/")


def test_detail_and_what_hangs_off_it_do_not_grow_with_the_data(in_alpha, tree, people, archive, product, settled):
    settled()
    client = client_for(in_alpha, people.city)
    small, large = archive.c11, new_customer(people.admin, tree.c11, "大客户")
    surround(small, people.admin, product, 3)
    surround(large, people.admin, product, 60)
    assert client.get(f"{API}{large.pk}/contacts/?page_size=200").json()["count"] == 60
    for tail in DETAIL_TAILS:
        few = queries(client, f"{API}{small.pk}/{tail}")
        assert queries(client, f"{API}{large.pk}/{tail}") == few, tail
        assert queries(client, f"{API}{large.pk}/{tail}?page_size=100") == few, tail
    # The customer: the row (with unit, manager and group joined; grants cached, groups inside).
    assert queries(client, f"{API}{small.pk}/") == REQUEST + 1
    # History reads the snapshots of the five tracked models, one query each.
    assert queries(client, f"{API}{small.pk}/history/") == REQUEST + 1 + 5


def test_caller_id_does_not_grow_with_the_matches(in_alpha, tree, people, settled):
    settled()
    client = client_for(in_alpha, people.province)
    first = new_customer(people.admin, tree.c11, "来电客户0", phone="13312345678")
    services.contact_save(actor=people.admin, customer=first, data={"name": "张三", "phones": "133 1234 5678"})
    few = queries(client, "/api/v1/caller-id/?number=13312345678")
    for number in range(1, 15):
        customer = new_customer(people.admin, tree.c12, f"来电客户{number}", phone="13312345678")
        services.contact_save(actor=people.admin, customer=customer, data={"name": f"联系人{number}", "phones": "13312345678"})
    assert len(client.get("/api/v1/caller-id/?number=13312345678").json()["results"]) == 15
    # The cards, and the matching contacts' names.
    assert queries(client, "/api/v1/caller-id/?number=13312345678") == few == REQUEST + 2
