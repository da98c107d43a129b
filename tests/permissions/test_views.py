"""The roles, users, grants and modules pages through Django's test client."""
import re

import pytest
from django.contrib.auth import get_user_model

from permissions.catalog import RESOURCES
from permissions.models import Membership, ModuleToggle, OrgUnitUserObjectPermission, Role

from .conftest import client_for, make_user, member, role

User = get_user_model()


REFUSAL = '<div class="alert alert-danger" role="status">'  # a refused action, at the top of the page


def html(response, status=200):
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


@pytest.fixture
def admin_page(in_alpha, admin):
    return client_for(in_alpha, admin)


@pytest.fixture
def padmin_page(in_alpha, padmin):
    return client_for(in_alpha, padmin)


def nav_links(page):
    menu = page.split('data-testid="org-admin-menu"')[1].split("</ul>")[0] if 'data-testid="org-admin-menu"' in page else ""
    return re.findall(r'class="dropdown-item[^"]*" href="([^"]+)"', menu)


# --- Navigation -----------------------------------------------------------------------------

def test_the_menu_lists_only_the_pages_a_user_may_open(in_alpha, admin_page, padmin_page, people):
    everything = ["/org/", "/org/levels/", "/access/roles/", "/access/users/", "/access/grants/", "/access/modules/"]
    assert nav_links(html(admin_page.get("/"))) == everything
    assert nav_links(html(padmin_page.get("/"))) == everything  # read-only roles and modules
    am1, _ = people
    manager = client_for(in_alpha, am1)
    assert nav_links(html(manager.get("/"))) == ["/org/", "/org/levels/"]
    for url in everything[2:]:
        assert 'data-testid="forbidden"' in html(manager.get(url), 403)


# --- Roles ----------------------------------------------------------------------------------

def test_create_a_role_then_tick_its_permissions_in_the_matrix(admin_page, tree):
    response = admin_page.post("/access/roles/", {"role-code": "auditor", "role-name": "审计员", "role-description": ""})
    auditor = Role.objects.get(code="auditor")
    assert response.status_code == 302 and response["Location"] == f"/access/roles/{auditor.pk}/"

    page = html(admin_page.get(response["Location"]))
    boxes = re.findall(r'name="role-permissions" value="([\w.]+)"', page)
    assert len(boxes) == sum(len(actions) for _label, actions in RESOURCES.values())
    assert 'aria-label="Org units: View"' in page

    response = admin_page.post(response["Location"], {
        "action": "save", "role-name": "审计员", "role-description": "Reads reports",
        "role-permissions": ["org_unit.view", "report.view", "report.export"],
    })
    assert response.status_code == 302
    auditor.refresh_from_db()
    assert auditor.permissions == ["org_unit.view", "report.view", "report.export"]
    page = html(admin_page.get(f"/access/roles/{auditor.pk}/"))
    assert re.findall(r'value="([\w.]+)"[^>]*checked', page) == ["org_unit.view", "report.view", "report.export"]


def test_role_errors_are_shown_on_the_field(admin_page, tree):
    page = html(admin_page.post("/access/roles/", {"role-code": "tenant_admin", "role-name": "Again"}))
    assert 'id="id_role-code_error"' in page and "already taken" in page
    am = role("account_manager")
    page = html(admin_page.post(f"/access/roles/{am.pk}/", {"action": "save", "role-name": "AM", "role-permissions": ["org_unit.fly"]}))
    assert 'id="id_role-permissions_error"' in page
    am.refresh_from_db()
    assert am.name == "Account manager"


def test_a_role_still_held_cannot_be_deleted(admin_page, people):
    am = role("account_manager")
    page = html(admin_page.post(f"/access/roles/{am.pk}/", {"action": "delete"}))
    assert 'data-testid="form-error"' in page and "still held" in page
    assert Role.objects.filter(pk=am.pk).exists()
    spare = Role.objects.create(code="spare", name="Spare")
    assert admin_page.post(f"/access/roles/{spare.pk}/", {"action": "delete"})["Location"] == "/access/roles/"
    assert not Role.objects.filter(code="spare").exists()


def test_a_provincial_admin_sees_roles_read_only(padmin_page):
    am = role("account_manager")
    page = html(padmin_page.get(f"/access/roles/{am.pk}/"))
    assert "disabled" in page and "Save role" not in page and "Delete role" not in page
    assert 'id="id_role-code"' not in html(padmin_page.get("/access/roles/"))
    refused = html(padmin_page.post(f"/access/roles/{am.pk}/", {"action": "save", "role-name": "Mine"}), 403)
    assert REFUSAL in refused and "Only administrators of the whole organisation" in refused
    refused = html(padmin_page.post("/access/roles/", {"role-code": "mine", "role-name": "Mine"}), 403)
    assert REFUSAL in refused and not Role.objects.filter(code="mine").exists()
    assert role("account_manager").name == "Account manager"


# --- Users and memberships ----------------------------------------------------------------

def test_create_a_user_shows_the_password_once(admin_page, in_alpha, tree):
    response = admin_page.post("/access/users/", {
        "user-email": "wang.fang@example.com", "user-last_name": "王", "user-first_name": "芳",
        "user-unit": tree.c11.pk, "user-role": role("account_manager").pk,
    })
    page = html(response)
    password = re.search(r'data-testid="new-password">([^<]+)</code>', page).group(1)
    assert 'data-user="wang.fang@example.com"' in page and 'data-membership="C11:account_manager"' in page
    login = in_alpha.client().post("/login/", {"username": "wang.fang@example.com", "password": password})
    assert login.status_code == 302 and login["Location"] == "/"
    assert password not in html(admin_page.get("/access/users/"))


def test_user_form_errors_name_the_field(admin_page, tree):
    page = html(admin_page.post("/access/users/", {"user-email": "nope", "user-unit": tree.c11.pk, "user-role": role("account_manager").pk}))
    assert 'id="id_user-email_error"' in page and 'data-testid="new-password"' not in page
    assert not User.objects.filter(username="nope").exists()


def test_a_provincial_admin_manages_users_of_the_province_only(padmin_page, tree, people):
    am1, am2 = people
    page = html(padmin_page.get("/access/users/"))
    assert f'data-user="{am1.username}"' in page and f'data-user="{am2.username}"' not in page
    # The unit list offers only the province; a unit outside is not a valid choice.
    form = page.split('id="id_user-unit"')[1].split("</select>")[0]
    assert re.findall(r"\((\w+)\)</option>", form) == ["P1", "C11", "C12"]
    page = html(padmin_page.post("/access/users/", {"user-email": "x@example.com", "user-unit": tree.c21.pk, "user-role": role("account_manager").pk}))
    assert 'id="id_user-unit_error"' in page
    # A role beyond their own permissions is refused with 403.
    page = html(padmin_page.post("/access/users/", {"user-email": "x@example.com", "user-unit": tree.c11.pk, "user-role": role("tenant_admin").pk}), 403)
    assert REFUSAL in page and "You do not hold these permissions there yourself" in page
    assert not User.objects.filter(username="x@example.com").exists()
    assert padmin_page.get(f"/access/users/{am2.pk}/").status_code == 404


def test_memberships_are_added_and_removed_on_the_user_page(admin_page, tree, people):
    am1, _ = people
    url = f"/access/users/{am1.pk}/"
    response = admin_page.post(url, {"action": "add_membership", "membership-unit": tree.p2.pk, "membership-role": role("provincial_manager").pk})
    assert response.status_code == 302
    page = html(admin_page.get(url))
    assert re.findall(r'data-membership="([^"]+)"', page) == ["C11:account_manager", "P2:provincial_manager"]
    membership = Membership.objects.get(user=am1, unit=tree.p2)
    assert admin_page.post(url, {"action": "remove_membership", "membership": membership.pk}).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    page = html(admin_page.post(url, {"action": "add_membership", "membership-unit": tree.c11.pk, "membership-role": role("account_manager").pk}))
    assert "already holds this role" in page


def test_deactivation_and_no_self_service(admin_page, padmin_page, padmin, people):
    am1, _ = people
    assert admin_page.post(f"/access/users/{am1.pk}/", {"action": "deactivate"}).status_code == 302
    am1.refresh_from_db()
    assert not am1.is_active
    own = html(padmin_page.get(f"/access/users/{padmin.pk}/"))
    assert "Deactivate account" not in own and "Remove" not in own.split('data-testid="memberships"')[1].split("</ul>")[0]
    page = html(padmin_page.post(f"/access/users/{padmin.pk}/", {"action": "deactivate"}), 403)
    assert REFUSAL in page and "You cannot change your own memberships or grants." in page
    padmin.refresh_from_db()
    assert padmin.is_active


# --- Object grants ----------------------------------------------------------------------------

def test_grants_are_added_listed_and_withdrawn(admin_page, tree, people):
    am1, _ = people
    response = admin_page.post("/access/grants/", {"action": "add", "grant-user": am1.username.upper(), "grant-unit": tree.c21.pk, "grant-action": "view"})
    assert response.status_code == 302
    page = html(admin_page.get("/access/grants/"))
    assert f'data-grant="{am1.username}:C21:view"' in page
    grant = OrgUnitUserObjectPermission.objects.get(user=am1)
    assert admin_page.post("/access/grants/", {"action": "remove", "grant": grant.pk}).status_code == 302
    assert not OrgUnitUserObjectPermission.objects.exists()
    page = html(admin_page.post("/access/grants/", {"action": "add", "grant-user": am1.username, "grant-unit": tree.c21.pk, "grant-action": "fly"}))
    assert 'id="id_grant-action_error"' in page
    page = html(admin_page.post("/access/grants/", {"action": "add", "grant-user": "ghost@example.com", "grant-unit": tree.c21.pk, "grant-action": "view"}))
    assert 'id="id_grant-user_error"' in page


def test_grants_outside_the_scope_are_neither_shown_nor_withdrawn(admin_page, padmin_page, tree, people):
    _, am2 = people
    admin_page.post("/access/grants/", {"action": "add", "grant-user": am2.username, "grant-unit": tree.c21.pk, "grant-action": "view"})
    grant = OrgUnitUserObjectPermission.objects.get(user=am2)
    assert "data-grant=" not in html(padmin_page.get("/access/grants/"))
    assert padmin_page.post("/access/grants/", {"action": "remove", "grant": grant.pk}).status_code == 404
    assert OrgUnitUserObjectPermission.objects.filter(pk=grant.pk).exists()


# --- Modules --------------------------------------------------------------------------------

def test_a_switch_posts_through_htmx_and_gets_its_cell_back(admin_page, tree):
    city = tree.levels["city"]
    page = html(admin_page.get("/access/modules/"))
    assert page.count('role="switch"') == 3 * 4
    assert f'data-module="city:campaigns" data-enabled="on"' in page

    cell = html(admin_page.post("/access/modules/", {"module": "campaigns", "level": city.pk}, HTTP_HX_REQUEST="true"))
    assert cell.strip().startswith("<td") and 'data-module="city:campaigns" data-enabled="off"' in cell
    assert ModuleToggle.objects.get(level=city, module="campaigns").enabled is False
    # Without JavaScript the same form submits and the page comes back.
    response = admin_page.post("/access/modules/", {"module": "campaigns", "level": city.pk, "enabled": "on"})
    assert response.status_code == 302 and ModuleToggle.objects.get(level=city, module="campaigns").enabled is True
    assert admin_page.post("/access/modules/", {"module": "teleport", "level": city.pk}).status_code == 400


def test_modules_are_read_only_below_tenant_wide_admins(padmin_page, tree):
    page = html(padmin_page.get("/access/modules/"))
    assert 'role="switch"' not in page and page.count('data-enabled="on"') == 12
    assert padmin_page.post("/access/modules/", {"module": "campaigns", "level": tree.levels["city"].pk}).status_code == 403
    cell = html(padmin_page.post("/access/modules/", {"module": "campaigns", "level": tree.levels["city"].pk}, HTTP_HX_REQUEST="true"))
    assert 'data-enabled="on"' in cell and "Only administrators of the whole organisation" in cell
    assert not ModuleToggle.objects.exists()


def test_long_user_lists_are_paged(admin_page, tree):
    for number in range(55):
        member(make_user(f"many{number:02}"), tree.c12, "account_manager")
    first = html(admin_page.get("/access/users/"))
    second = html(admin_page.get("/access/users/?page=2"))
    assert first.count("data-user=") == 50 and second.count("data-user=") == 6  # 55 and the admin
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
