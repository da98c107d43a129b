"""The roles, users, memberships, grants, modules and scope API on a tenant host.

Lists show only what the caller's scope covers; ids outside it answer 404, refusals of what
the caller sees answer 403, bad input answers 400 naming the field. Query counts are pinned.
"""
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from org_hierarchy.models import OrgLevel
from permissions.catalog import ALL_PERMISSIONS, MODULES
from permissions.models import Membership, ModuleToggle, OrgUnitUserObjectPermission, PermissionAuditEntry, Role

from .conftest import client_for, make_user, member, role

User = get_user_model()


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def fields_of(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"]
    return error["fields"]


@pytest.fixture
def api(in_alpha, admin):
    return client_for(in_alpha, admin)


@pytest.fixture
def padmin_api(in_alpha, padmin):
    return client_for(in_alpha, padmin)


# --- Catalogue and roles ---------------------------------------------------------------------

def test_the_catalogue_lists_resources_actions_and_modules(api):
    body = api.get("/api/v1/permissions/catalog/", HTTP_ACCEPT_LANGUAGE="en").json()
    resources = {row["code"]: row for row in body["resources"]}
    assert resources["org_unit"]["actions"] == ["view", "add", "change", "delete"]
    assert resources["org_unit"]["label"] == "Org units"
    assert {"view", "add", "change", "delete", "export", "assign"} <= set(body["actions"])
    assert [m["code"] for m in body["modules"]] == list(MODULES)
    assert body["permissions"] == list(ALL_PERMISSIONS)


def test_roles_list_shows_the_builtin_roles(api, in_alpha):
    rows = {row["code"]: row for row in results(api.get("/api/v1/roles/"))}
    assert {"tenant_admin", "hq_analyst", "provincial_manager", "provincial_admin", "account_manager"} <= set(rows)
    assert rows["account_manager"]["is_builtin"] is True and "customer.view" in rows["account_manager"]["permissions"]


def test_create_update_and_delete_a_role(api, admin, in_alpha):
    created = post(api, "/api/v1/roles/", {"code": "auditor", "name": "审计 Auditor", "permissions": ["report.view", "org_unit.view"]})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["permissions"] == ["org_unit.view", "report.view"]  # catalogue order
    assert PermissionAuditEntry.objects.filter(actor=admin, action="role_created").exists()

    updated = patch(api, f"/api/v1/roles/{pk}/", {"permissions": ["org_unit.view", "customer.view"]})
    assert updated.status_code == 200 and updated.json()["permissions"] == ["org_unit.view", "customer.view"]
    assert api.get(f"/api/v1/roles/{pk}/").json()["name"] == "审计 Auditor"

    assert api.delete(f"/api/v1/roles/{pk}/").status_code == 204
    assert not Role.objects.filter(code="auditor").exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "x", "name": "X", "permissions": ["org_unit.fly"]}, "permissions"),
        ({"code": "tenant_admin", "name": "Again"}, "code"),
        ({"code": "not a slug", "name": "X"}, "code"),
        ({"code": "x"}, "name"),
        ({"code": "x", "name": "X", "permissions": "org_unit.view"}, "permissions"),  # not a list
    ],
)
def test_role_input_errors_name_the_field(api, in_alpha, body, field):
    before = Role.objects.count()
    assert field in fields_of(post(api, "/api/v1/roles/", body))
    assert Role.objects.count() == before


def test_a_role_still_held_cannot_be_deleted(api, people):
    response = api.delete(f"/api/v1/roles/{role('account_manager').pk}/")
    assert "role" in fields_of(response)


def test_a_provincial_admin_reads_roles_but_cannot_define_them(padmin_api):
    assert results(padmin_api.get("/api/v1/roles/"))
    assert post(padmin_api, "/api/v1/roles/", {"code": "mine", "name": "Mine"}).status_code == 403
    assert patch(padmin_api, f"/api/v1/roles/{role('account_manager').pk}/", {"name": "x"}).status_code == 403
    assert not Role.objects.filter(code="mine").exists() and role("account_manager").name == "Account manager"


def test_a_user_without_role_view_is_refused_the_role_list(in_alpha, people):
    am1, _ = people
    assert client_for(in_alpha, am1).get("/api/v1/roles/").status_code == 403


# --- Users -----------------------------------------------------------------------------------

def test_create_a_user_returns_the_password_once_and_it_works(api, admin, tree, in_alpha):
    response = post(api, "/api/v1/users/", {
        "email": "Li.Na@Example.com", "first_name": "娜", "last_name": "李",
        "unit": tree.c11.pk, "role": role("account_manager").pk,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    password = body["password"]
    assert body["email"] == body["username"] == "li.na@example.com" and body["is_active"] is True
    assert body["memberships"] == [{
        "id": Membership.objects.get(user_id=body["id"]).pk,
        "unit": {"id": tree.c11.pk, "code": "C11", "name": "C11"},
        "role": {"id": role("account_manager").pk, "code": "account_manager", "name": "Account manager"},
    }]
    assert PermissionAuditEntry.objects.filter(actor=admin, action="user_created").exists()

    login = in_alpha.client().post("/login/", {"username": "li.na@example.com", "password": password})
    assert login.status_code == 302 and login["Location"] == "/"
    # Never again.
    assert "password" not in api.get(f"/api/v1/users/{body['id']}/").json()
    assert password not in api.get("/api/v1/users/").content.decode()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"unit": 999999}, "unit"),
        ({"role": 999999}, "role"),
        ({"unit": "abc"}, "unit"),
        ({"role": None}, "role"),
    ],
)
def test_user_input_errors_name_the_field(api, tree, change, field):
    body = {"email": "new@example.com", "unit": tree.c11.pk, "role": role("account_manager").pk} | change
    before = User.objects.count()
    assert field in fields_of(post(api, "/api/v1/users/", body))
    assert User.objects.count() == before


def test_an_email_already_used_is_refused(api, tree, people):
    am1, _ = people
    body = {"email": am1.username.upper(), "unit": tree.c11.pk, "role": role("account_manager").pk}
    assert "email" in fields_of(post(api, "/api/v1/users/", body))


def test_a_provincial_admin_lists_and_manages_only_the_province(padmin_api, padmin, tree, people):
    am1, am2 = people
    emails = {row["username"] for row in results(padmin_api.get("/api/v1/users/"))}
    assert am1.username in emails and am2.username not in emails
    assert padmin_api.get(f"/api/v1/users/{am2.pk}/").status_code == 404
    assert post(padmin_api, f"/api/v1/users/{am2.pk}/deactivate/").status_code == 404

    # Creating inside works; a unit outside is unknown to them; a role beyond their own is 403.
    inside = post(padmin_api, "/api/v1/users/", {"email": "c12@example.com", "unit": tree.c12.pk, "role": role("account_manager").pk})
    assert inside.status_code == 201, inside.content
    outside = post(padmin_api, "/api/v1/users/", {"email": "c21@example.com", "unit": tree.c21.pk, "role": role("account_manager").pk})
    assert "unit" in fields_of(outside)
    above = post(padmin_api, "/api/v1/users/", {"email": "boss@example.com", "unit": tree.c12.pk, "role": role("tenant_admin").pk})
    assert above.status_code == 403
    assert not User.objects.filter(username__in=["c21@example.com", "boss@example.com"]).exists()


def test_a_user_s_memberships_outside_the_callers_scope_stay_hidden(padmin_api, tree, people):
    am1, _ = people
    member(am1, tree.c21, "account_manager")  # am1 also works in P2
    row = padmin_api.get(f"/api/v1/users/{am1.pk}/").json()
    assert [m["unit"]["code"] for m in row["memberships"]] == ["C11"]
    # ...and a user working outside the province cannot be deactivated by them (403: they see am1).
    assert post(padmin_api, f"/api/v1/users/{am1.pk}/deactivate/").status_code == 403


def test_deactivate_and_activate(api, in_alpha, people):
    am1, _ = people
    response = post(api, f"/api/v1/users/{am1.pk}/deactivate/")
    assert response.status_code == 200 and response.json()["is_active"] is False
    am1.refresh_from_db()
    assert not am1.is_active
    assert PermissionAuditEntry.objects.filter(action="user_deactivated").exists()
    assert post(api, f"/api/v1/users/{am1.pk}/activate/").json()["is_active"] is True


def test_nobody_deactivates_themselves(padmin_api, padmin):
    response = post(padmin_api, f"/api/v1/users/{padmin.pk}/deactivate/")
    assert response.status_code == 403
    padmin.refresh_from_db()
    assert padmin.is_active


# --- Memberships -----------------------------------------------------------------------------

def test_memberships_list_create_and_delete(api, tree, people):
    am1, am2 = people
    rows = results(api.get(f"/api/v1/memberships/?user={am1.pk}"))
    assert [(r["unit"]["code"], r["role"]["code"]) for r in rows] == [("C11", "account_manager")]
    assert {r["user"]["username"] for r in results(api.get(f"/api/v1/memberships/?unit={tree.c21.pk}"))} == {am2.username}

    created = post(api, "/api/v1/memberships/", {"user": am1.pk, "unit": tree.c12.pk, "role": role("provincial_manager").pk})
    assert created.status_code == 201, created.content
    assert created.json()["unit"]["code"] == "C12" and created.json()["role"]["code"] == "provincial_manager"
    assert "role" in fields_of(post(api, "/api/v1/memberships/", {"user": am1.pk, "unit": tree.c12.pk, "role": role("provincial_manager").pk}))

    assert api.delete(f"/api/v1/memberships/{created.json()['id']}/").status_code == 204
    assert not Membership.objects.filter(user=am1, unit=tree.c12).exists()


def test_memberships_delegation(padmin_api, padmin, tree, people):
    am1, am2 = people
    codes = {(r["user"]["username"], r["unit"]["code"]) for r in results(padmin_api.get("/api/v1/memberships/"))}
    assert (am1.username, "C11") in codes and not any(unit == "C21" for _email, unit in codes)
    outside = Membership.objects.get(user=am2)
    assert padmin_api.get(f"/api/v1/memberships/{outside.pk}/").status_code == 404
    assert padmin_api.delete(f"/api/v1/memberships/{outside.pk}/").status_code == 404
    # No self-promotion, nothing beyond their own permissions.
    assert post(padmin_api, "/api/v1/memberships/", {"user": padmin.pk, "unit": tree.c11.pk, "role": role("account_manager").pk}).status_code == 403
    assert post(padmin_api, "/api/v1/memberships/", {"user": am1.pk, "unit": tree.c11.pk, "role": role("tenant_admin").pk}).status_code == 403
    assert "user" in fields_of(post(padmin_api, "/api/v1/memberships/", {"user": am2.pk, "unit": tree.c11.pk, "role": role("account_manager").pk}))
    own = Membership.objects.get(user=padmin)
    assert padmin_api.delete(f"/api/v1/memberships/{own.pk}/").status_code == 403
    assert Membership.objects.filter(pk__in=[own.pk, outside.pk]).count() == 2


# --- Object grants ---------------------------------------------------------------------------

def test_a_grant_shares_one_unit_beyond_the_tree(api, in_alpha, tree, people):
    am1, _ = people
    am1_api = client_for(in_alpha, am1)
    assert [u["code"] for u in results(am1_api.get("/api/v1/org-units/"))] == ["C11"]

    created = post(api, "/api/v1/grants/", {"user": am1.pk, "unit": tree.c21.pk, "action": "view"})
    assert created.status_code == 201, created.content
    assert created.json()["action"] == "view" and created.json()["unit"]["code"] == "C21"
    assert [u["code"] for u in results(am1_api.get("/api/v1/org-units/"))] == ["C11", "C21"]
    rows = results(api.get(f"/api/v1/grants/?unit={tree.c21.pk}"))
    assert [(r["user"]["username"], r["action"]) for r in rows] == [(am1.username, "view")]

    assert api.delete(f"/api/v1/grants/{created.json()['id']}/").status_code == 204
    assert not OrgUnitUserObjectPermission.objects.filter(user=am1).exists()
    assert [u["code"] for u in results(am1_api.get("/api/v1/org-units/"))] == ["C11"]


def test_grant_input_errors_name_the_field(api, tree, people):
    am1, _ = people
    assert "action" in fields_of(post(api, "/api/v1/grants/", {"user": am1.pk, "unit": tree.c21.pk, "action": "fly"}))
    assert "unit" in fields_of(post(api, "/api/v1/grants/", {"user": am1.pk, "unit": 999999, "action": "view"}))
    assert "user" in fields_of(post(api, "/api/v1/grants/", {"user": 999999, "unit": tree.c21.pk, "action": "view"}))


def test_grants_outside_the_scope_are_hidden(api, padmin_api, tree, people):
    am1, am2 = people
    outside = post(api, "/api/v1/grants/", {"user": am2.pk, "unit": tree.c21.pk, "action": "change"}).json()
    assert results(padmin_api.get("/api/v1/grants/")) == []
    assert padmin_api.get(f"/api/v1/grants/{outside['id']}/").status_code == 404
    assert padmin_api.delete(f"/api/v1/grants/{outside['id']}/").status_code == 404
    assert OrgUnitUserObjectPermission.objects.filter(pk=outside["id"]).exists()


# --- Modules and the caller's scope ----------------------------------------------------------

def test_modules_per_level_and_switching_one_off(api, in_alpha, tree, people):
    am1, _ = people
    rows = results(api.get("/api/v1/modules/"))
    assert [row["level"]["code"] for row in rows] == ["hq", "province", "city"]
    assert all(row["modules"] == {module: True for module in MODULES} for row in rows)

    city = OrgLevel.objects.get(code="city")
    response = post(api, "/api/v1/modules/", {"module": "campaigns", "level": city.pk, "enabled": False})
    assert response.status_code == 200, response.content
    assert response.json()["modules"]["campaigns"] is False and response.json()["modules"]["customers"] is True
    assert ModuleToggle.objects.get(level=city, module="campaigns").enabled is False
    rows = {row["level"]["code"]: row["modules"] for row in results(api.get("/api/v1/modules/"))}
    assert rows["city"]["campaigns"] is False and rows["province"]["campaigns"] is True

    # The account manager at a city has lost the module; the tenant admin has not.
    assert client_for(in_alpha, am1).get("/api/v1/me/scope/").json()["modules"]["campaigns"] is False
    assert api.get("/api/v1/me/scope/").json()["modules"]["campaigns"] is True


def test_module_input_errors_and_refusals(api, padmin_api, tree):
    city = OrgLevel.objects.get(code="city")
    assert "module" in fields_of(post(api, "/api/v1/modules/", {"module": "teleport", "level": city.pk, "enabled": False}))
    assert "level" in fields_of(post(api, "/api/v1/modules/", {"module": "campaigns", "level": 999999, "enabled": False}))
    assert "enabled" in fields_of(post(api, "/api/v1/modules/", {"module": "campaigns", "level": city.pk}))
    assert results(padmin_api.get("/api/v1/modules/"))  # module.view
    assert post(padmin_api, "/api/v1/modules/", {"module": "campaigns", "level": city.pk, "enabled": False}).status_code == 403
    assert not ModuleToggle.objects.exists()


def test_my_scope_lists_my_permissions_per_unit(in_alpha, api, padmin_api, tree, people):
    body = padmin_api.get("/api/v1/me/scope/").json()
    assert body["is_superuser"] is False and body["count"] == 3
    rows = {row["unit"]["code"]: row["permissions"] for row in body["results"]}
    assert list(rows) == ["P1", "C11", "C12"]
    assert "org_unit.change" in rows["C11"] and "role.change" not in rows["C11"]
    assert rows["P1"] == [code for code in ALL_PERMISSIONS if code in set(role("provincial_admin").permissions)]

    am1, _ = people
    post(api, "/api/v1/grants/", {"user": am1.pk, "unit": tree.c21.pk, "action": "view"})
    rows = {row["unit"]["code"]: row["permissions"] for row in client_for(in_alpha, am1).get("/api/v1/me/scope/").json()["results"]}
    assert rows["C21"] == ["org_unit.view"] and "customer.add" in rows["C11"]

    admin_body = api.get("/api/v1/me/scope/?page_size=2").json()
    assert admin_body["is_superuser"] is True and admin_body["count"] == 6
    assert admin_body["results"][0]["permissions"] == list(ALL_PERMISSIONS)


# --- Query counts ----------------------------------------------------------------------------

def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


@pytest.fixture
def many_people(tree):
    for number in range(30):
        user = make_user(f"crowd{number}")
        member(user, tree.c11 if number % 2 else tree.c12, "account_manager")
        member(user, tree.c21, "account_manager")  # outside P1: hidden from the provincial admin


# Maxima per request, the user included (tenant and session come from the cache); the
# provincial admin's scope is resolved from the database at each use here (uncommitted test
# data is never cached).
@pytest.mark.parametrize(
    "url, most_admin, most_padmin",
    [
        ("/api/v1/users/", 4, 13),
        ("/api/v1/memberships/", 3, 9),
        ("/api/v1/grants/", 2, 8),
        ("/api/v1/roles/", 4, 9),
        ("/api/v1/me/scope/", 5, 13),
        ("/api/v1/modules/", 5, 10),
    ],
)
def test_lists_do_not_grow_with_the_page(api, padmin_api, many_people, url, most_admin, most_padmin, django_assert_max_num_queries):
    for client, most in ((api, most_admin), (padmin_api, most_padmin)):
        client.get(url)  # the host and the session in the cache, as after any first request
        assert _count(client, f"{url}?page_size=2") == _count(client, f"{url}?page_size=30")
        with django_assert_max_num_queries(most):
            client.get(f"{url}?page_size=30")


def test_user_detail_queries_are_pinned(padmin_api, many_people, people, django_assert_max_num_queries):
    am1, _ = people
    with django_assert_max_num_queries(17):
        assert padmin_api.get(f"/api/v1/users/{am1.pk}/").json()["memberships"][0]["unit"]["code"] == "C11"
