"""The org tree pages through Django's test client: what each user sees, and each form
calling its service (field errors shown on the field, refusals answered with 403)."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from org_hierarchy import services
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit

from .conftest import client_for, make_user, snapshot


REFUSAL = '<div class="alert alert-danger" role="status">'  # a refused action, at the top of the page


@pytest.fixture
def admin_page(in_alpha, admin):
    return client_for(in_alpha, admin)


@pytest.fixture
def padmin_page(in_alpha, padmin):
    return client_for(in_alpha, padmin)


@pytest.fixture
def viewer_page(in_alpha, viewer):
    return client_for(in_alpha, viewer)


def html(response, status=200):
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


def units_shown(page):
    return re.findall(r'data-unit="([^"]+)"', page)


def unit_url(unit):
    return f"/org/units/{unit.pk}/"


# --- Browsing -------------------------------------------------------------------------------

def test_the_tree_asks_for_a_login(in_alpha):
    response = in_alpha.client().get("/org/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/org/"


def test_the_admin_sees_the_whole_tree_with_the_top_levels_open(admin_page, tree):
    page = html(admin_page.get("/org/"))
    assert units_shown(page) == ["HQ", "P1", "C11", "D111", "C12", "P2", "C21"]
    assert page.count("<details open>") == 3  # HQ and its provinces; C11 (third level) starts closed
    assert page.count("<details>") == 1
    assert 'id="id_root-code"' in page  # tenant admins add top-level units


def test_a_provincial_admin_sees_exactly_the_province(padmin_page, tree):
    page = html(padmin_page.get("/org/"))
    assert units_shown(page) == ["P1", "C11", "D111", "C12"]
    assert "Unit HQ" not in page and "Unit P2" not in page and "Unit C21" not in page
    assert 'id="id_root-code"' not in page
    assert padmin_page.get(unit_url(tree.c21)).status_code == 404
    assert padmin_page.get(unit_url(tree.hq)).status_code == 404
    # Top-level units are for tenant admins: posting the form anyway is refused with a message.
    before = snapshot()
    refused = html(padmin_page.post("/org/", {"root-code": "HQ2", "root-name": "HQ2", "root-level": tree.levels["hq"].pk}), 403)
    assert REFUSAL in refused and "tenant admin" in refused
    assert snapshot() == before


def test_search_swaps_only_the_tree_for_htmx(padmin_page, tree):
    partial = html(padmin_page.get("/org/?q=c1", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="org-tree"))
    assert "<html" not in partial and units_shown(partial) == ["C11", "C12"]
    full = html(padmin_page.get("/org/?q=unit+c2"))
    assert "<html" in full and "No unit matches" in full


def test_a_user_without_any_role_gets_the_403_page_and_no_admin_menu(in_alpha, tree):
    client = client_for(in_alpha, make_user("nobody"))
    page = html(client.get("/org/"), 403)
    assert 'data-testid="forbidden"' in page
    assert 'data-testid="org-admin-menu"' not in html(client.get("/"))


def test_the_unit_page_shows_children_ancestors_audit_and_the_allowed_forms(admin_page, padmin_page, viewer_page, tree):
    page = html(admin_page.get(unit_url(tree.c11)))
    assert units_shown(page) == ["D111"]
    assert re.search(r'breadcrumb-item"><a href="/org/units/%d/">Unit HQ</a>' % tree.hq.pk, page)
    assert all(f'data-testid="form-{name}"' in page for name in ("add_child", "rename", "move", "merge", "close"))
    assert 'data-testid="audit"' in page and "Created" in page

    province_view = html(padmin_page.get(unit_url(tree.c11)))
    assert "Unit HQ" not in province_view  # an ancestor outside the province is not named
    # Only what they may see is offered as a new parent: P1's subtree minus C11's own.
    move = province_view.split('data-testid="form-move"')[1].split("</section>")[0]
    assert re.findall(r"\((\w+)\)</option>", move) == ["P1", "C12"]

    read_only = html(viewer_page.get(unit_url(tree.c11)))
    assert "You may view this unit but not change it." in read_only
    assert "data-testid=\"form-" not in read_only


# --- Reorganising through the forms ---------------------------------------------------------

def test_add_a_unit_under_another(admin_page, admin, tree):
    response = admin_page.post(unit_url(tree.c12), {
        "action": "add_child", "add_child-code": "D121", "add_child-name": "新区 New district",
        "add_child-level": tree.levels["district"].pk,
    })
    unit = OrgUnit.objects.get(code="D121")
    assert response.status_code == 302 and response["Location"] == unit_url(unit)
    assert unit.parent == tree.c12 and OrgAuditEntry.objects.get(unit=unit, action="created").actor == admin
    assert "新区 New district (D121) was added." in html(admin_page.get(response["Location"]))


def test_bad_input_is_shown_on_the_field_and_changes_nothing(admin_page, tree):
    before = snapshot()
    page = html(admin_page.post(unit_url(tree.c12), {
        "action": "add_child", "add_child-code": "C11", "add_child-name": "Again", "add_child-level": tree.levels["district"].pk,
    }))
    assert re.search(r'id="id_add_child-code"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="id_add_child-code"', page)
    assert 'id="id_add_child-code_error">The code “C11” is already used.' in page
    assert 'value="Again"' in page  # what they typed stays
    # The level list only offers levels below the unit's own.
    form = page.split('data-testid="form-add_child"')[1].split("</section>")[0]
    assert re.findall(r'<option value="\d+"[^>]*>(\w+)</option>', form) == ["District"]
    assert snapshot() == before


def test_rename_move_merge_and_close(admin_page, tree):
    assert admin_page.post(unit_url(tree.c11), {"action": "rename", "rename-name": "苏州"}).status_code == 302
    tree.c11.refresh_from_db()
    assert tree.c11.name == "苏州"

    response = admin_page.post(unit_url(tree.c11), {"action": "move", "move-new_parent": tree.p2.pk})
    assert response.status_code == 302
    tree.refresh()
    assert tree.c11.parent == tree.p2 and tree.d111.parent == tree.c11

    response = admin_page.post(unit_url(tree.c12), {"action": "merge", "merge-survivor": tree.c21.pk})
    assert response.status_code == 302 and response["Location"] == unit_url(tree.c21)
    tree.c12.refresh_from_db()
    assert not tree.c12.is_active
    assert 'data-testid="unit-closed"' in html(admin_page.get(unit_url(tree.c12)))

    refused = html(admin_page.post(unit_url(tree.c11), {"action": "close", "close-confirm": "on"}))
    assert 'data-testid="form-error"' in refused and "still has" in refused
    assert admin_page.post(unit_url(tree.d111), {"action": "close", "close-confirm": "on"}).status_code == 302
    tree.d111.refresh_from_db()
    assert not tree.d111.is_active


def test_move_under_its_own_descendant_is_not_offered_and_refused(admin_page, tree):
    before = snapshot()
    page = html(admin_page.post(unit_url(tree.c11), {"action": "move", "move-new_parent": tree.d111.pk}))
    assert 'id="id_move-new_parent_error"' in page
    assert snapshot() == before


def test_close_needs_the_confirmation(admin_page, tree):
    page = html(admin_page.post(unit_url(tree.d111), {"action": "close"}))
    assert 'id="id_close-confirm_error"' in page
    tree.d111.refresh_from_db()
    assert tree.d111.is_active


def test_a_viewer_posting_a_change_anyway_gets_403_and_nothing_changes(viewer_page, padmin_page, tree):
    before = snapshot()
    page = html(viewer_page.post(unit_url(tree.c11), {"action": "rename", "rename-name": "Mine"}), 403)
    assert REFUSAL in page
    assert padmin_page.post(unit_url(tree.c21), {"action": "rename", "rename-name": "Mine"}).status_code == 404
    assert snapshot() == before


def test_an_unknown_action_is_a_bad_request(admin_page, tree):
    assert admin_page.post(unit_url(tree.c11), {"action": "explode"}).status_code == 400


# --- Levels ---------------------------------------------------------------------------------

def test_levels_page_adds_renames_and_deletes(admin_page, tree):
    page = html(admin_page.get("/org/levels/"))
    assert re.findall(r'data-level="([^"]+)"', page) == ["hq", "province", "city", "district"]

    response = admin_page.post("/org/levels/", {"action": "create", "new-code": "grid", "new-name": "网格", "new-rank": 7})
    assert response.status_code == 302
    grid = OrgLevel.objects.get(code="grid")
    response = admin_page.post("/org/levels/", {
        "action": "update", "level": grid.pk, f"level-{grid.pk}-name": "Grid cell", f"level-{grid.pk}-rank": 6,
    })
    assert response.status_code == 302
    grid.refresh_from_db()
    assert (grid.name, grid.rank) == ("Grid cell", 6)
    assert admin_page.post("/org/levels/", {"action": "delete", "level": grid.pk}).status_code == 302
    assert not OrgLevel.objects.filter(code="grid").exists()


def test_levels_page_shows_the_services_refusals(admin_page, tree):
    city = tree.levels["city"]
    page = html(admin_page.post("/org/levels/", {"action": "delete", "level": city.pk}))
    assert "units are at level" in page
    page = html(admin_page.post("/org/levels/", {"action": "create", "new-code": "x", "new-name": "X", "new-rank": 1}))
    assert 'id="id_new-rank_error"' in page
    assert OrgLevel.objects.count() == 4
    assert admin_page.post("/org/levels/", {"action": "delete", "level": "abc"}).status_code == 400


def test_levels_are_read_only_below_tenant_wide_admins(padmin_page, tree):
    page = html(padmin_page.get("/org/levels/"))
    assert "<td>2</td><td><code>city</code></td><td>City</td>" in page and 'name="action"' not in page
    page = html(padmin_page.post("/org/levels/", {"action": "create", "new-code": "grid", "new-name": "Grid", "new-rank": 9}), 403)
    assert REFUSAL in page and "whole tenant" in page
    assert not OrgLevel.objects.filter(code="grid").exists()


# --- Query counts ---------------------------------------------------------------------------

def test_the_tree_page_queries_do_not_grow_with_the_tree(admin_page, padmin_page, tree):
    def count(client):
        with CaptureQueriesContext(connection) as queries:
            html(client.get("/org/"))
        return len(queries)

    small = count(admin_page), count(padmin_page)
    for number in range(40):
        services.unit_create(actor="pytest", code=f"CX{number:02}", name=f"City {number}", level=tree.levels["city"], parent=tree.p1)
    assert (count(admin_page), count(padmin_page)) == small


def test_the_admin_adds_a_top_level_unit_from_the_tree_page(admin_page, tree):
    response = admin_page.post("/org/", {"root-code": "HQ2", "root-name": "第二总部", "root-level": tree.levels["hq"].pk})
    unit = OrgUnit.objects.get(code="HQ2")
    assert response.status_code == 302 and response["Location"] == unit_url(unit) and unit.parent is None
    page = html(admin_page.post("/org/", {"root-code": "", "root-name": "X", "root-level": tree.levels["hq"].pk}))
    assert 'id="id_root-code_error"' in page
