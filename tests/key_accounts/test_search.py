"""Search and filters (R8): Chinese substrings and fuzzy names, phones in any format by suffix,
codes, every attribute filter, sorting; always inside the caller's scope, and written so that
PostgreSQL can answer from the indexes (the trigram index on UPPER(name), the reversed phone
digits)."""
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from key_accounts import selectors, services
from key_accounts.models import Customer

from .conftest import client_for, new_customer


def names(user, **params):
    return [c.name for c in selectors.customer_list(user=user, params=params)]


def found(user, **params):
    return {c.pk for c in selectors.customer_list(user=user, params=params)}


def ids(*customers):
    return {c.pk for c in customers}


@pytest.fixture
def more(tree, people, archive):
    """A few more customers in C11 with names, codes and phones to search for."""
    admin = people.admin
    return {
        "alpha": new_customer(admin, tree.c11, "Alpha Logistics 阿尔法物流", external_id="CRM-0042"),
        "bank": new_customer(admin, tree.c11, "招商银行广州分行", credit_code="91440300MA5D000002", kind="enterprise",
                             industry="J", grade="strategic", is_national_key_account=True),
        "school": new_customer(admin, tree.c11, "天河区第一中学", kind="institution", industry="P", grade="A",
                               phone="(020) 3888-1234 转 806", is_potential_key_account=True),
        "tianhe": new_customer(admin, tree.c11, "天河科技", grade="B"),
    }


# --- Names ---------------------------------------------------------------------------------------

def test_a_chinese_substring_finds_the_name_anywhere(people, archive, more):
    assert found(people.admin, q="天河科技") == ids(archive.c11, more["tianhe"])
    assert found(people.admin, name="天河") == ids(archive.c11, more["school"], more["tianhe"])  # two characters
    assert found(people.admin, q="广州分") == ids(archive.member11, more["bank"])
    assert found(people.admin, q="alpha LOGISTICS") == ids(more["alpha"])  # any case


def test_the_closest_name_comes_first(people, archive, more):
    # "天河科技" is the whole of one name and a part of another: the whole name ranks first.
    assert names(people.admin, q="天河科技") == ["天河科技", "广州市天河科技有限公司"]
    # An explicit sort wins over the ranking.
    assert names(people.admin, q="天河科技", ordering="-name") == ["广州市天河科技有限公司", "天河科技"]


def test_a_typo_finds_the_name_when_nothing_contains_the_text(people, archive, more):
    assert found(people.admin, q="广州市天河科枝有限公司") == ids(archive.c11)  # 枝 for 技
    assert found(people.admin, name="深圳南山物流有限公司") == ids(archive.c12)  # 市 left out
    assert found(people.admin, q="Alpha Logistcs") == ids(more["alpha"])
    assert found(people.admin, q="完全无关的名字") == set()


def test_fuzzy_matches_are_looked_for_inside_the_callers_scope(tree, people, archive):
    # HQ has a name containing "科技有限公" (c11, in P1); the city of C21 does not, so its
    # typo still finds its own customer by similarity, and never c11.
    from tests.support.people import make_user, member

    own = new_customer(people.admin, tree.c21, "长沙市岳麓科枝有限公司")
    c21 = make_user("c21")
    member(c21, tree.c21, "account_manager")
    typo = found(c21, q="长沙市岳麓科技有限公司")
    assert own.pk in typo and archive.c11.pk not in typo
    assert archive.c11.pk not in found(c21, q="科技有限公")


# --- Phones, codes -------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["13800138000", "+86 138-0013-8000", "0086 13800138000", "138 0013 8000",
                                   "１３８００１３８０００", "38000", "8000"])
def test_a_phone_in_any_format_or_its_last_digits(people, archive, typed):
    assert found(people.admin, q=typed) == ids(archive.c12)
    assert found(people.admin, phone=typed) == ids(archive.c12)


def test_landlines_extensions_and_contacts_phones(people, archive, more):
    assert found(people.admin, phone="020-38881234") == ids(more["school"])  # extension dropped
    assert found(people.admin, phone="3888 1234") == ids(more["school"])  # without the area code
    assert found(people.admin, q="+86 20 8888 6666") == ids(archive.c11)
    services.contact_save(actor=people.admin, customer=archive.c21, data={"name": "赵六", "phones": "139-1111-2222, 0731-8123 4567"})
    assert found(people.admin, q="81234567") == ids(archive.c21)
    assert found(people.admin, phone="13911112222") == ids(archive.c21)
    assert found(people.admin, phone="12") == set()  # too short to search: nothing, not everything


def test_codes_and_external_ids(people, archive, more):
    assert found(people.admin, q="91440300ma5d000002") == ids(more["bank"])  # any case
    assert found(people.admin, credit_code="91440300") == ids(more["bank"])  # a prefix
    assert found(people.admin, q="CRM-0042") == ids(more["alpha"])
    assert found(people.admin, q="91110000100017643K") == ids(archive.group)


# --- Attribute filters and sorting ---------------------------------------------------------------

def test_each_attribute_narrows_the_list(tree, people, archive, more):
    admin = people.admin
    services.customer_update(actor=admin, customer=archive.c12, data={"account_manager": people.city})
    assert found(admin, kind=["government"]) == ids(archive.c21)
    assert found(admin, kind=["institution", "government"]) == ids(archive.c21, more["school"])
    assert found(admin, grade=["strategic", "A"]) == ids(more["bank"], more["school"])
    assert found(admin, status=["active"]) == ids(archive.c11)
    assert found(admin, industry=["J"]) == ids(more["bank"])
    assert found(admin, unit=tree.p1.pk) == ids(archive.c11, archive.c12, archive.member11, *more.values())
    assert found(admin, unit=tree.c21.pk) == ids(archive.c21, archive.member21)
    assert found(admin, unit=999999) == set()
    assert found(admin, manager=people.city.pk) == ids(archive.c12)
    assert found(admin, group=archive.group.pk) == ids(archive.member11, archive.member21)
    assert found(admin, national="true") == ids(archive.group, more["bank"])
    assert found(admin, potential="true") == ids(more["school"])
    assert found(admin, q="天河", grade=["B"], unit=tree.c11.pk) == ids(more["tianhe"])


def test_sorting(people, archive, more):
    admin = people.admin
    everyone = names(admin)
    assert everyone[0] == "天河科技"  # newest first
    assert names(admin, ordering="name") == sorted(everyone)
    grades = [c.grade for c in selectors.customer_list(user=admin, params={"ordering": "grade"})]
    assert grades == sorted(grades, key=["strategic", "A", "B", "C"].index)
    assert [c.grade for c in selectors.customer_list(user=admin, params={"ordering": "-grade"})][0] == "C"


@pytest.mark.parametrize("params, field", [
    ({"ordering": "password"}, "ordering"), ({"grade": ["Z"]}, "grade"), ({"unit": "x"}, "unit"),
])
def test_invalid_parameters_name_themselves(people, params, field):
    with pytest.raises(ValidationError) as error:
        selectors.customer_list(user=people.admin, params=params)
    assert field in error.value.message_dict


def test_the_api_answers_400_for_invalid_parameters(in_alpha, people):
    response = client_for(in_alpha, people.city).get("/api/v1/customers/?grade=Z&ordering=x")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"grade", "ordering"}


# --- Scope ---------------------------------------------------------------------------------------

def test_searches_never_leave_the_scope(people, archive, more):
    city = people.city
    assert found(city, q="长沙市岳麓教育局") == set()  # c21's exact name
    assert found(city, q="中国联合集团") == ids(archive.member11)  # not the group, not member21
    assert found(city, q="13800138000") == set()  # c12's phone
    assert found(city, q="91110000100017643K") == set()  # the group's credit code
    assert found(people.province, unit=archive.c21.org_unit_id) == set()


# --- Index use -----------------------------------------------------------------------------------

def plan(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # A test table is tiny: without this the planner reads it whole whatever the query.
        # With it, a query still reads the whole table when no index matches its expressions.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        text = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
    return text


@pytest.mark.parametrize("params, index", [
    ({"q": "天河科技"}, "ka_customer_name_trgm"),
    ({"name": "天河科枝"}, "ka_customer_name_trgm"),
    ({"q": "13800138000"}, "ka_phone_reversed"),
    ({"phone": "8000"}, "ka_phone_reversed"),
    ({"q": "91440300MA5D000002"}, "key_accounts_customer_credit_code"),
])
def test_searches_are_answered_from_the_indexes(people, archive, params, index):
    text = plan(selectors.customer_list(user=people.admin, params=params))
    assert index in text, text
    assert "Seq Scan on key_accounts_customer " not in text, text


def test_a_city_list_reads_its_units_customers_through_the_unit_index(people, archive):
    text = plan(selectors.customer_list(user=people.city, params={}))
    assert "ka_customer_unit_id" in text or "key_accounts_customer_org_unit_id" in text, text


# --- Large results ---------------------------------------------------------------------------------

def test_many_matches_are_listed_newest_first_instead_of_ranked(in_alpha, tree, people, monkeypatch):
    import key_accounts.filters as filters

    for name in ("天河一号大厦", "天河", "天河二号大厦"):
        new_customer(people.admin, tree.c11, name)
    client = client_for(in_alpha, people.admin)
    ranked = [row["name"] for row in client.get("/api/v1/customers/?q=天河一号").json()["results"]]
    assert ranked == ["天河一号大厦"]
    assert [r["name"] for r in client.get("/api/v1/customers/?q=天河二号大厦").json()["results"]][0] == "天河二号大厦"
    monkeypatch.setattr(filters, "RANK_LIMIT", 2)
    newest = [row["name"] for row in client.get("/api/v1/customers/?q=天河二号大厦").json()["results"]]
    assert newest == ["天河二号大厦"]  # still only what matches
    many = [row["name"] for row in client.get("/api/v1/customers/?q=大厦").json()["results"]]
    assert many == ["天河二号大厦", "天河一号大厦"]


def test_large_totals_are_cached_a_moment_small_ones_never(in_alpha, tree, people, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CACHE_MIN", 3)
    monkeypatch.setattr(selectors, "SCAN_LIMIT", 2)  # more matches than this are counted, not read
    tag = uuid.uuid4().hex[:8]  # a query no earlier run has cached
    client = client_for(in_alpha, people.admin)
    url = f"/api/v1/customers/?q={tag}"
    for n in range(2):
        new_customer(people.admin, tree.c11, f"{tag}{n}")
    assert client.get(url).json()["count"] == 2  # small: counted, not cached
    new_customer(people.admin, tree.c11, f"{tag}2")
    assert client.get(url).json()["count"] == 3  # now cached
    new_customer(people.admin, tree.c11, f"{tag}3")
    body = client.get(url).json()
    assert body["count"] == 3 and len(body["results"]) == 4  # the total lags, the rows do not
    # Another scope has another query, so another total.
    assert client_for(in_alpha, people.city).get(url).json()["count"] == 4
    assert Customer.objects.filter(name__startswith=tag).count() == 4
