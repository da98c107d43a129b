"""The org tree API: /api/v1/org-levels/ and /api/v1/org-units/ on a tenant host.

Reads are narrowed to the caller's scope (an id outside it answers 404, like a missing one);
writes are refused with 403 where the caller sees the unit but may not do the action; bad
input answers 400 naming the field. Query counts are pinned and do not grow with the page.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from org_hierarchy import services
from org_hierarchy.models import OrgAuditEntry, OrgUnit

from .conftest import client_for, make_user, member, snapshot

UNITS = "/api/v1/org-units/"
LEVELS = "/api/v1/org-levels/"


@pytest.fixture
def api(in_alpha, admin):
    return client_for(in_alpha, admin)


@pytest.fixture
def padmin_api(in_alpha, padmin):
    return client_for(in_alpha, padmin)


@pytest.fixture
def viewer_api(in_alpha, viewer):
    return client_for(in_alpha, viewer)


def codes(response):
    assert response.status_code == 200, response.content
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return [row["code"] for row in rows]


def fields_of(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


# --- Reading ---------------------------------------------------------------------------------

def test_unit_list_is_in_tree_order_with_levels_inlined(api, tree):
    response = api.get(UNITS)
    assert codes(response) == ["HQ", "P1", "C11", "D111", "C12", "P2", "C21"]
    c11 = response.json()["results"][2]
    assert c11["level"] == {"id": tree.levels["city"].pk, "code": "city", "name": "City", "rank": 2}
    assert c11["parent"] == tree.p1.pk and c11["depth"] == 3 and c11["numchild"] == 1 and c11["is_active"] is True
    assert response.json()["count"] == 7


@pytest.mark.parametrize(
    "query, expected",
    [
        ("parent={p1}", ["C11", "C12"]),
        ("level={city}", ["C11", "C12", "C21"]),
        ("q=unit c1", ["C11", "C12"]),
        ("q=d11", ["D111"]),
        ("parent={p1}&q=C12", ["C12"]),
    ],
)
def test_unit_list_filters(api, tree, query, expected):
    query = query.format(p1=tree.p1.pk, city=tree.levels["city"].pk)
    assert codes(api.get(f"{UNITS}?{query}")) == expected


def test_a_bad_filter_value_names_the_parameter(api, tree):
    assert "parent" in fields_of(api.get(f"{UNITS}?parent=abc"))


def test_a_provincial_admin_sees_exactly_the_province(padmin_api, tree):
    assert codes(padmin_api.get(UNITS)) == ["P1", "C11", "D111", "C12"]
    tree_rows = padmin_api.get(f"{UNITS}tree/").json()
    assert [row["code"] for row in tree_rows] == ["P1", "C11", "D111", "C12"]
    # P1's parent (HQ) is not in the list: the editor shows P1 as a root.
    assert {row["code"]: row["parent"] for row in tree_rows} == {
        "P1": tree.hq.pk, "C11": tree.p1.pk, "D111": tree.c11.pk, "C12": tree.p1.pk
    }


def test_an_id_outside_the_scope_answers_like_a_missing_one(padmin_api, tree):
    outside = padmin_api.get(f"{UNITS}{tree.c21.pk}/")
    missing = padmin_api.get(f"{UNITS}999999/")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json() == {"error": {"code": "not_found", "message": outside.json()["error"]["message"]}}
    for suffix in ("audit/",):
        assert padmin_api.get(f"{UNITS}{tree.c21.pk}/{suffix}").status_code == 404
    for action, body in (("move/", {"parent": tree.p1.pk}), ("merge/", {"survivor": tree.c11.pk}), ("close/", {})):
        assert post(padmin_api, f"{UNITS}{tree.c21.pk}/{action}", body).status_code == 404
    assert patch(padmin_api, f"{UNITS}{tree.c21.pk}/", {"name": "x"}).status_code == 404


def test_retrieve(api, tree):
    body = api.get(f"{UNITS}{tree.c11.pk}/").json()
    assert body["code"] == "C11" and body["name"] == "Unit C11" and body["parent"] == tree.p1.pk
    assert body["level"]["code"] == "city"


def test_anonymous_callers_are_refused(in_alpha, tree):
    response = in_alpha.client().get(UNITS)
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


# --- Writing ---------------------------------------------------------------------------------

def test_create_a_unit_with_an_audit_entry(api, admin, tree):
    response = post(api, UNITS, {"code": "C13", "name": "新城 New city", "level": tree.levels["city"].pk, "parent": tree.p1.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "C13" and body["name"] == "新城 New city" and body["parent"] == tree.p1.pk
    unit = OrgUnit.objects.get(code="C13")
    assert unit.get_parent() == tree.p1
    entry = OrgAuditEntry.objects.get(unit=unit, action="created")
    assert entry.actor == admin


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "X1", "level": "city"}, "name"),  # missing
        ({"code": "X1", "name": "", "level": "city"}, "name"),
        ({"name": "X", "level": "city"}, "code"),
        ({"code": "C11", "name": "Again", "level": "city"}, "code"),  # taken
        ({"code": "X1", "name": "X", "level": 999999}, "level"),
        ({"code": "X1", "name": "X", "level": "abc"}, "level"),
        ({"code": "X1", "name": "X", "level": "province", "parent": "c11"}, "parent"),  # a province under a city
        ({"code": "X1", "name": "X", "level": "city", "parent": 999999}, "parent"),
    ],
)
def test_create_names_the_bad_field_and_writes_nothing(api, tree, body, field):
    body = dict(body)
    if isinstance(body.get("level"), str) and body["level"] in tree.levels:
        body["level"] = tree.levels[body["level"]].pk
    if body.get("parent") == "c11":
        body["parent"] = tree.c11.pk
    body.setdefault("parent", tree.p1.pk)
    before = snapshot()
    assert field in fields_of(post(api, UNITS, body))
    assert snapshot() == before


def test_a_provincial_admin_creates_inside_but_not_outside(padmin_api, tree):
    inside = post(padmin_api, UNITS, {"code": "C14", "name": "C14", "level": tree.levels["city"].pk, "parent": tree.p1.pk})
    assert inside.status_code == 201, inside.content
    # P2 is not visible to them: the same answer as an unknown parent.
    outside = post(padmin_api, UNITS, {"code": "C22", "name": "C22", "level": tree.levels["city"].pk, "parent": tree.p2.pk})
    assert fields_of(outside) == {"parent": ["Unknown unit."]}
    roots = post(padmin_api, UNITS, {"code": "HQ2", "name": "HQ2", "level": tree.levels["hq"].pk})
    assert roots.status_code == 403


def test_field_errors_speak_the_caller_s_language(in_alpha, admin, tree):
    client = in_alpha.client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    client.force_login(admin)
    body = post(client, f"{UNITS}{tree.c11.pk}/move/", {"parent": 999999}).json()
    assert body["error"]["fields"] == {"parent": ["未知的单元。"]}


def test_a_viewer_is_refused_every_write_with_403(viewer_api, tree):
    before = snapshot()
    assert codes(viewer_api.get(UNITS)) == ["P1", "C11", "D111", "C12"]
    assert post(viewer_api, UNITS, {"code": "C15", "name": "C15", "level": tree.levels["city"].pk, "parent": tree.p1.pk}).status_code == 403
    assert patch(viewer_api, f"{UNITS}{tree.c11.pk}/", {"name": "Renamed"}).status_code == 403
    assert post(viewer_api, f"{UNITS}{tree.c12.pk}/move/", {"parent": tree.c11.pk}).status_code == 403
    assert post(viewer_api, f"{UNITS}{tree.c12.pk}/close/").status_code == 403
    assert snapshot() == before


def test_403_when_the_unit_is_visible_but_the_action_is_not_allowed_there(in_alpha, tree):
    """Allowed to change units in P1, only to view them in P2: P2's units answer 403, not 404."""
    user = make_user("mixed")
    member(user, tree.p1, "provincial_admin")
    member(user, tree.p2, "account_manager")
    client = client_for(in_alpha, user)
    response = patch(client, f"{UNITS}{tree.c21.pk}/", {"name": "Renamed"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert patch(client, f"{UNITS}{tree.c11.pk}/", {"name": "Renamed"}).status_code == 200
    tree.c21.refresh_from_db()
    assert tree.c21.name == "Unit C21"


def test_rename(api, tree):
    response = patch(api, f"{UNITS}{tree.c11.pk}/", {"name": "苏州 Suzhou"})
    assert response.status_code == 200 and response.json()["name"] == "苏州 Suzhou"
    assert OrgAuditEntry.objects.filter(unit=tree.c11, action="renamed").exists()
    assert "name" in fields_of(patch(api, f"{UNITS}{tree.c11.pk}/", {"name": "  "}))


def test_move_a_city_to_another_province(api, admin, tree):
    response = post(api, f"{UNITS}{tree.c11.pk}/move/", {"parent": tree.p2.pk})
    assert response.status_code == 200, response.content
    assert response.json()["parent"] == tree.p2.pk
    tree.refresh()
    assert tree.c11.get_parent() == tree.p2 and tree.d111.get_parent() == tree.c11
    entry = OrgAuditEntry.objects.get(unit=tree.c11, action="moved")
    assert entry.actor == admin and entry.detail["new_parent"]["code"] == "P2"


@pytest.mark.parametrize("target, says", [("d111", "descendant"), ("c11", "itself"), ("c12", "level")])
def test_move_refusals_name_the_parent_field(api, tree, target, says):
    before = snapshot()
    fields = fields_of(post(api, f"{UNITS}{tree.c11.pk}/move/", {"parent": getattr(tree, target).pk}))
    assert list(fields) == ["parent"] and says in fields["parent"][0]
    assert snapshot() == before


def test_move_needs_a_parent(api, tree):
    assert "parent" in fields_of(post(api, f"{UNITS}{tree.c11.pk}/move/", {}))


def test_merge_folds_the_source_into_the_survivor(api, tree):
    response = post(api, f"{UNITS}{tree.c12.pk}/merge/", {"survivor": tree.c11.pk})
    assert response.status_code == 200, response.content
    assert response.json()["code"] == "C11"
    tree.c12.refresh_from_db()
    assert not tree.c12.is_active and tree.c12.closed_at is not None
    assert "C12" not in codes(api.get(UNITS))
    assert OrgAuditEntry.objects.filter(unit=tree.c12, action="merged").exists()


def test_merge_into_itself_names_the_survivor(api, tree):
    before = snapshot()
    assert "survivor" in fields_of(post(api, f"{UNITS}{tree.c12.pk}/merge/", {"survivor": tree.c12.pk}))
    assert "survivor" in fields_of(post(api, f"{UNITS}{tree.c12.pk}/merge/", {"survivor": 999999}))
    assert snapshot() == before


def test_close_only_once_nothing_is_owned(api, tree):
    refused = post(api, f"{UNITS}{tree.c11.pk}/close/")  # D111 is still open under it
    assert "unit" in fields_of(refused)
    response = post(api, f"{UNITS}{tree.d111.pk}/close/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert post(api, f"{UNITS}{tree.c11.pk}/close/").status_code == 200


def test_audit_of_a_unit_covers_its_subtree_newest_first(api, admin, tree):
    services.unit_rename(actor=admin, unit=tree.d111, name="Renamed district")
    response = api.get(f"{UNITS}{tree.c11.pk}/audit/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert rows[0]["action"] == "renamed" and rows[0]["unit_code"] == "D111" and rows[0]["actor"] == admin.username
    assert {row["unit_code"] for row in rows} == {"C11", "D111"}


# --- Levels ----------------------------------------------------------------------------------

def test_levels_list_create_update_delete(api, tree):
    assert codes(api.get(LEVELS)) == ["hq", "province", "city", "district"]
    created = post(api, LEVELS, {"code": "grid", "name": "网格 Grid", "rank": 9})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    updated = patch(api, f"{LEVELS}{pk}/", {"name": "Grid cell", "rank": 8})
    assert updated.status_code == 200 and updated.json() == {"id": pk, "code": "grid", "name": "Grid cell", "rank": 8}
    assert api.delete(f"{LEVELS}{pk}/").status_code == 204
    assert codes(api.get(LEVELS)) == ["hq", "province", "city", "district"]


def test_level_refusals_name_the_field(api, tree):
    assert "rank" in fields_of(post(api, LEVELS, {"code": "dup", "name": "Dup", "rank": 1}))  # taken
    assert "code" in fields_of(post(api, LEVELS, {"code": "not a slug", "name": "X", "rank": 20}))
    assert "rank" in fields_of(patch(api, f"{LEVELS}{tree.levels['city'].pk}/", {"rank": 0}))  # above its parents
    assert "level" in fields_of(api.delete(f"{LEVELS}{tree.levels['city'].pk}/"))  # still used


def test_levels_are_read_by_viewers_and_changed_only_tenant_wide(padmin_api, viewer_api, tree):
    assert codes(viewer_api.get(LEVELS)) == ["hq", "province", "city", "district"]
    assert post(viewer_api, LEVELS, {"code": "grid", "name": "Grid", "rank": 9}).status_code == 403
    # A provincial admin may change units, but only in the province: levels are tenant-wide.
    assert post(padmin_api, LEVELS, {"code": "grid", "name": "Grid", "rank": 9}).status_code == 403


# --- Query counts ----------------------------------------------------------------------------

def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.fixture
def many_cities(tree):
    for number in range(60):
        services.unit_create(actor="pytest", code=f"CX{number:02}", name=f"City {number}", level=tree.levels["city"], parent=tree.p1)


# Maxima per request, session and tenant lookups included. A tenant admin's scope needs no query;
# a provincial admin's is resolved from the database at each use here (3 queries each time),
# because the test's own writes are uncommitted and scopes are never cached from them; in
# production each of those is one cache read.
MAX_QUERIES = {
    "admin": {"list": 7, "detail": 6, "tree": 6, "audit": 8},
    "padmin": {"list": 14, "detail": 13, "tree": 13, "audit": 19},
}


@pytest.mark.parametrize("who", ["admin", "padmin"])
def test_unit_list_and_detail_queries_do_not_grow_with_the_page(request, many_cities, tree, who, django_assert_max_num_queries):
    client = request.getfixturevalue("api" if who == "admin" else "padmin_api")
    most = MAX_QUERIES[who]
    assert _count(client, f"{UNITS}?page_size=2") == _count(client, f"{UNITS}?page_size=60")
    assert _count(client, f"{UNITS}{tree.p1.pk}/audit/?page_size=2") == _count(client, f"{UNITS}{tree.p1.pk}/audit/?page_size=60")
    with django_assert_max_num_queries(most["list"]):
        assert len(client.get(f"{UNITS}?page_size=60").json()["results"]) == 60
    with django_assert_max_num_queries(most["detail"]):
        assert client.get(f"{UNITS}{tree.c11.pk}/").json()["code"] == "C11"
    with django_assert_max_num_queries(most["tree"]):
        assert len(client.get(f"{UNITS}tree/").json()) >= 64
    with django_assert_max_num_queries(most["audit"]):
        assert len(client.get(f"{UNITS}{tree.p1.pk}/audit/?page_size=60").json()["results"]) == 60
