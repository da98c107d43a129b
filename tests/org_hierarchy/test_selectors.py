"""Reads of the tree: visible units, subtrees on the path index, the structure as of a date,
and the audit trail narrowed to what a user may see."""
import pytest
from django.db import connection
from django.http import Http404
from django.utils import timezone

from org_hierarchy import services
from org_hierarchy.models import OrgUnit
from org_hierarchy.selectors import audit_list, parent_map_as_of, subtree_ids, unit_get, unit_list

from .conftest import make_user, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(tree):
    user = make_user("manager")
    member(user, tree.p1, "provincial_manager")
    return user


def codes(units):
    return [unit.code for unit in units]


def test_a_tenant_admin_lists_every_open_unit_in_tree_order(tree, admin):
    assert codes(unit_list(user=admin)) == ["HQ", "P1", "C11", "D111", "C12", "P2", "C21"]
    services.unit_close(actor="pytest", unit=tree.c12)
    assert "C12" not in codes(unit_list(user=admin))
    assert "C12" in codes(unit_list(user=admin, include_closed=True))


def test_a_provincial_user_lists_their_province_only(tree, manager):
    assert codes(unit_list(user=manager)) == ["P1", "C11", "D111", "C12"]
    assert codes(unit_list(user=make_user("nobody"))) == []


def test_list_as_of_a_date_gives_the_units_that_existed_then(tree, admin):
    before = timezone.now()
    services.unit_create(actor="pytest", code="C13", name="Later", level="city", parent=tree.p1)
    services.unit_close(actor="pytest", unit=tree.c12)
    assert codes(unit_list(user=admin, as_of=before)) == ["HQ", "P1", "C11", "D111", "C12", "P2", "C21"]
    assert "C13" in codes(unit_list(user=admin, as_of=timezone.now()))


def test_unit_get_answers_404_for_what_the_user_may_not_see(tree, manager):
    assert unit_get(user=manager, pk=tree.c11.pk) == tree.c11
    for pk in (tree.c21.pk, tree.hq.pk, 10**9, "not-a-number"):
        with pytest.raises(Http404):
            unit_get(user=manager, pk=pk)


def test_subtree_ids_is_one_query_on_the_path_index(tree, django_assert_num_queries):
    with django_assert_num_queries(1):
        ids = subtree_ids(tree.p1)
    assert set(ids) == {tree.p1.pk, tree.c11.pk, tree.c12.pk, tree.d111.pk}
    assert set(subtree_ids(tree.d111)) == {tree.d111.pk}
    sql, params = OrgUnit.objects.filter(path__startswith=tree.p1.path).order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test table is tiny; ask whether the index can serve it
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # A pattern-ops index on path turns the prefix into a range scan: path ~>=~ 'P' AND path ~<~ 'P+1'.
    assert "Index" in plan and "~>=~" in plan and "Sort" not in plan, plan


def test_parent_map_as_of_follows_moves_and_closures(tree):
    start = timezone.now()
    services.unit_move(actor="pytest", unit=tree.c12, new_parent=tree.p2)
    moved = timezone.now()
    services.unit_close(actor="pytest", unit=tree.c12)
    then, now = parent_map_as_of(start), parent_map_as_of()
    assert then[tree.c12.pk] == tree.p1.pk and parent_map_as_of(moved)[tree.c12.pk] == tree.p2.pk
    assert tree.c12.pk not in now
    assert then[tree.hq.pk] is None and now[tree.c11.pk] == tree.p1.pk
    assert parent_map_as_of(start.replace(year=2000)) == {}


def test_audit_list_shows_only_entries_about_visible_units(tree, admin, manager):
    services.unit_rename(actor=admin, unit=tree.c11, name="Renamed")
    services.unit_rename(actor=admin, unit=tree.c21, name="Elsewhere")
    mine = audit_list(user=manager)
    assert {entry.unit_code for entry in mine} == {"P1", "C11", "C12", "D111"}
    assert mine.first().action == "renamed" and mine.first().unit_code == "C11"  # newest first
    everything = audit_list(user=admin)
    assert everything.filter(action="level_changed").count() == 4  # about no unit: tenant admins only
    assert {entry.unit_code for entry in audit_list(user=admin, unit=tree.c11)} == {"C11", "D111"}
    assert {entry.unit_code for entry in audit_list(user=manager, unit=tree.p2)} == set()
