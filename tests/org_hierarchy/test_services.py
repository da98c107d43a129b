"""Reorganisations: create, rename, move, merge, close and levels, with their audit, parent
periods, permission checks and refusals (which change nothing)."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models
from django.apps import apps
from django.http import Http404
from django.utils import timezone

from org_hierarchy import ownership, services
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit, OrgUnitParentPeriod
from org_hierarchy.selectors import parent_map_as_of, subtree_ids
from permissions.models import Membership, OrgUnitUserObjectPermission
from permissions.scope import resolve_scope
from permissions.selectors import visible

from .conftest import assert_tree_consistent, make_user, member, snapshot

pytestmark = pytest.mark.django_db


def refused(call, field, **kwargs):
    """Run a service that must refuse with a ValidationError on ``field`` and change nothing."""
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        call(actor="pytest", **kwargs)
    assert field in exc.value.message_dict, exc.value.message_dict
    assert snapshot() == before
    return " ".join(exc.value.message_dict[field])


def grant(user, unit, codename="change_orgunit"):
    permission = Permission.objects.get(codename=codename, content_type__app_label="org_hierarchy")
    return OrgUnitUserObjectPermission.objects.create(user=user, permission=permission, content_object=unit)


# --- Create and rename --------------------------------------------------------------------

def test_create_places_the_unit_opens_its_parent_period_and_audits(tree, admin):
    before = timezone.now()
    unit = services.unit_create(actor=admin, code="C13", name="Unit C13", level="city", parent=tree.p1)
    assert unit.parent == tree.p1 and unit.path.startswith(tree.p1.path) and unit.depth == 3
    period = OrgUnitParentPeriod.objects.get(unit=unit)
    assert period.parent == tree.p1 and period.valid_to is None and period.valid_from >= before
    entry = OrgAuditEntry.objects.get(unit=unit)
    assert (entry.action, entry.actor, entry.actor_label) == ("created", admin, admin.username)
    assert entry.detail["parent"]["code"] == "P1" and entry.detail["level"] == "city"
    assert_tree_consistent()


def test_a_unit_may_skip_levels_downwards(tree):
    unit = services.unit_create(actor="pytest", code="C0", name="Directly under HQ", level=tree.levels["city"], parent=tree.hq)
    assert unit.parent == tree.hq
    assert_tree_consistent()


@pytest.mark.parametrize("kwargs, field", [
    ({"code": "C11"}, "code"),  # duplicate
    ({"code": "  "}, "code"),
    ({"code": "x" * 65}, "code"),
    ({"name": ""}, "name"),
    ({"level": "county"}, "level"),  # unknown
    ({"level": 999999}, "level"),
    ({"level": "province"}, "parent"),  # a province under a province
    ({"level": "hq"}, "parent"),  # the top level under a province
])
def test_create_refuses_bad_input(tree, kwargs, field):
    arguments = {"code": "NEW", "name": "New", "level": "city", "parent": tree.p1, **kwargs}
    refused(services.unit_create, field, **arguments)


def test_rename_is_audited_and_a_same_name_rename_is_a_no_op(tree):
    services.unit_rename(actor="pytest", unit=tree.c11, name="  Hangzhou  ")
    tree.c11.refresh_from_db()
    assert tree.c11.name == "Hangzhou"
    entry = OrgAuditEntry.objects.get(unit=tree.c11, action="renamed")
    assert entry.detail == {"old_name": "Unit C11", "new_name": "Hangzhou"}
    count = OrgAuditEntry.objects.count()
    services.unit_rename(actor="pytest", unit=tree.c11, name="Hangzhou")
    assert OrgAuditEntry.objects.count() == count
    refused(services.unit_rename, "name", unit=tree.c11, name=" ")


# --- Move ------------------------------------------------------------------------------------

def test_reorg_moves_a_city_with_its_subtree_to_another_province(tree, admin):
    created = timezone.now()
    services.unit_move(actor=admin, unit=tree.c11, new_parent=tree.p2)
    moved = timezone.now()
    tree.refresh()

    assert tree.c11.parent == tree.p2 and tree.c11.path.startswith(tree.p2.path)
    assert tree.d111.path.startswith(tree.c11.path) and tree.d111.parent == tree.c11  # the subtree came along
    assert set(subtree_ids(tree.p2)) == {tree.p2.pk, tree.c21.pk, tree.c11.pk, tree.d111.pk}
    assert set(subtree_ids(tree.p1)) == {tree.p1.pk, tree.c12.pk}
    assert_tree_consistent()

    entry = OrgAuditEntry.objects.get(action="moved", unit=tree.c11)
    assert entry.actor == admin and entry.actor_label == admin.username and created <= entry.at <= moved
    assert entry.detail["old_parent"]["code"] == "P1" and entry.detail["new_parent"]["code"] == "P2"
    assert entry.detail["units_moved"] == 2

    periods = list(OrgUnitParentPeriod.objects.filter(unit=tree.c11).order_by("valid_from"))
    assert [p.parent_id for p in periods] == [tree.p1.pk, tree.p2.pk]
    assert periods[0].valid_to == periods[1].valid_from and periods[1].valid_to is None
    assert parent_map_as_of(created)[tree.c11.pk] == tree.p1.pk
    assert parent_map_as_of(timezone.now())[tree.c11.pk] == tree.p2.pk
    assert parent_map_as_of(created)[tree.d111.pk] == tree.c11.pk  # untouched below the moved unit


def test_after_a_move_the_old_province_loses_access_and_the_new_one_gains_it(tree):
    old, new = make_user("old-province"), make_user("new-province")
    member(old, tree.p1, "provincial_manager")
    member(new, tree.p2, "provincial_manager")
    assert tree.c11.pk in resolve_scope(old).units("customer.view")  # resolved (and cached) before the move
    assert tree.c11.pk not in resolve_scope(new).units("customer.view")

    services.unit_move(actor="pytest", unit=tree.c11, new_parent=tree.p2)

    assert tree.c11 not in visible(old, OrgUnit.objects.all())
    assert {tree.c11, tree.d111} <= set(visible(new, OrgUnit.objects.all()))
    assert tree.d111.pk in resolve_scope(new).units("customer.view")


def test_a_unit_can_move_to_the_top_and_back(tree):
    services.unit_move(actor="pytest", unit=tree.p2, new_parent=None)
    tree.refresh()
    assert tree.p2.parent is None and tree.p2.depth == 1 and tree.c21.depth == 2
    assert_tree_consistent()
    services.unit_move(actor="pytest", unit=tree.p2, new_parent=tree.hq)
    tree.refresh()
    assert tree.p2.parent == tree.hq and tree.c21.depth == 3
    assert parent_map_as_of()[tree.p2.pk] == tree.hq.pk
    assert OrgUnitParentPeriod.objects.filter(unit=tree.p2).count() == 3
    assert_tree_consistent()


def test_moving_to_the_current_parent_changes_nothing(tree):
    before = snapshot()
    services.unit_move(actor="pytest", unit=tree.c11, new_parent=tree.p1)
    assert snapshot() == before


@pytest.mark.parametrize("unit, new_parent, says", [
    ("c11", "c11", "under itself"),
    ("p1", "c11", "own descendant"),
    ("p1", "d111", "own descendant"),
    ("hq", "p2", "own descendant"),  # the cycle HQ -> P2 -> HQ
    ("c11", "c21", "levels must get deeper"),  # a city under a city
    ("p1", "p2", "levels must get deeper"),
])
def test_move_refuses_cycles_and_level_inversions(tree, unit, new_parent, says):
    message = refused(services.unit_move, "new_parent", unit=getattr(tree, unit), new_parent=getattr(tree, new_parent))
    assert says in message


def test_closed_units_cannot_be_moved_renamed_or_receive_units(tree):
    services.unit_close(actor="pytest", unit=tree.c12)
    assert "closed" in refused(services.unit_move, "unit", unit=tree.c12, new_parent=tree.p2)
    assert "closed" in refused(services.unit_rename, "unit", unit=tree.c12, name="Reborn")
    assert "closed" in refused(services.unit_move, "new_parent", unit=tree.d111, new_parent=tree.c12)
    assert "closed" in refused(services.unit_create, "parent", code="D121", name="x", level="district", parent=tree.c12)


def test_a_stale_instance_is_moved_from_where_it_really_is(tree):
    stale = OrgUnit.objects.get(pk=tree.d111.pk)
    services.unit_move(actor="pytest", unit=tree.c11, new_parent=tree.p2)
    services.unit_move(actor="pytest", unit=stale, new_parent=tree.c21)
    assert OrgUnit.objects.get(pk=stale.pk).parent == tree.c21
    assert_tree_consistent()


# --- Merge -----------------------------------------------------------------------------------

@pytest.fixture
def owned_records(in_alpha):
    """A model of a tenant app with a foreign key to OrgUnit, as customers will have: the merge
    and close rules must find it without being told. Its table exists only in this test."""
    class OwnedThing(models.Model):
        org_unit = models.ForeignKey(OrgUnit, on_delete=models.PROTECT)
        label = models.CharField(max_length=20)

        class Meta:
            app_label = "key_accounts"
            db_table = "test_owned_thing"
            verbose_name_plural = "owned things"

    with connection.schema_editor() as editor:
        editor.create_model(OwnedThing)
    ownership.owning_relations.cache_clear()
    yield OwnedThing
    del apps.all_models["key_accounts"]["ownedthing"]
    apps.clear_cache()
    ownership.owning_relations.cache_clear()


def test_merge_moves_children_members_grants_and_records_and_closes_the_source(tree, admin, owned_records):
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    member(ann, tree.c11, "account_manager")
    member(bob, tree.c11, "account_manager")
    member(bob, tree.c21, "account_manager")  # already there with the same role: a duplicate
    grant(cat, tree.c11)
    owned_records.objects.create(org_unit=tree.c11, label="a")
    owned_records.objects.create(org_unit=tree.c11, label="b")

    survivor = services.unit_merge(actor=admin, source=tree.c11, survivor=tree.c21)
    tree.refresh()

    assert survivor == tree.c21
    assert not tree.c11.is_active and tree.c11.closed_at is not None and tree.c11.code == "C11"
    assert tree.d111.parent == tree.c21 and tree.d111.path.startswith(tree.c21.path)
    assert set(Membership.objects.filter(unit=tree.c21).values_list("user__username", flat=True)) == {ann.username, bob.username}
    assert not Membership.objects.filter(unit=tree.c11).exists()
    assert OrgUnitUserObjectPermission.objects.get(user=cat).content_object == tree.c21
    assert set(owned_records.objects.values_list("org_unit_id", flat=True)) == {tree.c21.pk}
    assert_tree_consistent()

    entry = OrgAuditEntry.objects.get(action="merged")
    assert entry.actor == admin and entry.unit == tree.c11
    assert entry.detail["merged_ids"] == [tree.c11.pk, tree.c21.pk] and entry.detail["survivor"]["code"] == "C21"
    assert entry.detail["children_moved"] == ["D111"]
    assert (entry.detail["memberships_moved"], entry.detail["memberships_dropped"]) == (1, 1)
    assert entry.detail["grants_moved"] == 1
    assert entry.detail["records_moved"] == {"key_accounts.OwnedThing": 2}
    child_move = OrgAuditEntry.objects.get(action="moved", unit=tree.d111)
    assert child_move.detail["merge_of"]["code"] == "C11"
    # The source keeps its history but no longer exists from now on.
    assert tree.c11.pk not in parent_map_as_of(timezone.now())
    assert OrgUnitParentPeriod.objects.get(unit=tree.c11).valid_to == tree.c11.closed_at
    assert ann in [m.user for m in Membership.objects.filter(unit=tree.c21)]


def test_a_unit_can_be_folded_into_its_ancestor(tree):
    services.unit_merge(actor="pytest", source=tree.c11, survivor=tree.p1)
    tree.refresh()
    assert tree.d111.parent == tree.p1 and not tree.c11.is_active
    assert_tree_consistent()


@pytest.mark.parametrize("source, survivor, field, says", [
    ("c11", "c11", "survivor", "into itself"),
    ("p1", "c11", "survivor", "inside"),
    ("hq", "d111", "survivor", "inside"),
    ("p1", "c21", "survivor", "levels must get deeper"),  # P1's cities cannot go under a city
])
def test_merge_refuses_what_makes_no_sense(tree, source, survivor, field, says):
    assert says in refused(services.unit_merge, field, source=getattr(tree, source), survivor=getattr(tree, survivor))


def test_merge_refuses_closed_units(tree):
    services.unit_close(actor="pytest", unit=tree.c12)
    refused(services.unit_merge, "source", source=tree.c12, survivor=tree.c21)
    refused(services.unit_merge, "survivor", source=tree.c21, survivor=tree.c12)


def test_merge_stops_when_owned_records_would_collide(tree, owned_records):
    with connection.cursor() as cursor:  # a unique label per unit, as a customer number might be
        cursor.execute("CREATE UNIQUE INDEX test_owned_unique ON test_owned_thing (org_unit_id, label)")
    owned_records.objects.create(org_unit=tree.c11, label="same")
    owned_records.objects.create(org_unit=tree.c21, label="same")
    assert "owned things" in refused(services.unit_merge, "survivor", source=tree.c11, survivor=tree.c21)
    assert owned_records.objects.filter(org_unit=tree.c11).count() == 1


# --- Close -----------------------------------------------------------------------------------

def test_close_refuses_while_the_unit_still_owns_something(tree, owned_records):
    user = make_user("member")
    membership = member(user, tree.c12, "account_manager")
    thing = owned_records.objects.create(org_unit=tree.c12, label="a")
    message = refused(services.unit_close, "unit", unit=tree.c12)
    assert "1 membership" in message and "1 owned thing" in message
    assert "child" not in message

    assert "1 org unit" in refused(services.unit_close, "unit", unit=tree.c11)  # D111 is open under it

    membership.delete()
    thing.delete()
    services.unit_close(actor="pytest", unit=tree.c12)
    tree.refresh()
    assert not tree.c12.is_active and tree.c12.closed_at is not None
    entry = OrgAuditEntry.objects.get(action="closed")
    assert entry.unit == tree.c12 and entry.detail["parent"]["code"] == "P1"
    assert tree.c12.pk not in parent_map_as_of() and tree.c12.pk in parent_map_as_of(tree.c12.closed_at - timedelta(microseconds=1))
    assert "closed" in refused(services.unit_close, "unit", unit=tree.c12)
    assert_tree_consistent()


def test_closed_children_do_not_block_closing_their_parent(tree):
    services.unit_close(actor="pytest", unit=tree.d111)
    services.unit_close(actor="pytest", unit=tree.c11)
    assert not OrgUnit.objects.get(pk=tree.c11.pk).is_active


def test_owned_relations_are_discovered_not_listed():
    relations = {(model._meta.label, name) for model, name in ownership.owning_relations()}
    assert ("permissions.Membership", "unit") in relations
    assert not {label for label, _name in relations} & {
        "org_hierarchy.OrgUnit", "org_hierarchy.OrgUnitParentPeriod", "org_hierarchy.OrgAuditEntry",
        "permissions.OrgUnitUserObjectPermission",
    }
    assert [model for model, *_ in ownership.grant_relations()] == [OrgUnitUserObjectPermission]


# --- Permissions -----------------------------------------------------------------------------

@pytest.fixture
def padmin(tree):
    user = make_user("padmin")
    member(user, tree.p1, "provincial_admin")
    return user


def test_a_provincial_admin_reorganises_inside_the_province(tree, padmin):
    unit = services.unit_create(actor=padmin, code="C13", name="New city", level="city", parent=tree.p1)
    services.unit_move(actor=padmin, unit=tree.d111, new_parent=tree.c12)
    services.unit_rename(actor=padmin, unit=unit, name="Renamed")
    services.unit_merge(actor=padmin, source=unit, survivor=tree.c12)
    services.unit_close(actor=padmin, unit=tree.d111)
    assert set(OrgAuditEntry.objects.filter(actor=padmin).values_list("action", flat=True)) == {
        "created", "moved", "renamed", "merged", "closed"
    }


def test_a_provincial_admin_cannot_touch_other_provinces(tree, padmin):
    before = snapshot()
    with pytest.raises(Http404):  # cannot even see P2
        services.unit_create(actor=padmin, code="C22", name="x", level="city", parent=tree.p2)
    with pytest.raises(Http404):
        services.unit_move(actor=padmin, unit=tree.c11, new_parent=tree.p2)
    with pytest.raises(Http404):
        services.unit_merge(actor=padmin, source=tree.c11, survivor=tree.c21)
    with pytest.raises(Http404):
        services.unit_close(actor=padmin, unit=tree.c21)
    with pytest.raises(PermissionDenied):  # sees nothing above P1, but P1 itself: not at the top
        services.unit_create(actor=padmin, code="ROOT2", name="x", level="hq")
    with pytest.raises(PermissionDenied):
        services.level_create(actor=padmin, code="district2", name="x", rank=9)
    assert snapshot() == before


def test_a_user_who_may_only_view_is_refused_with_403(tree):
    viewer = make_user("viewer")
    member(viewer, tree.p1, "account_manager")
    before = snapshot()
    with pytest.raises(PermissionDenied):
        services.unit_create(actor=viewer, code="C13", name="x", level="city", parent=tree.p1)
    with pytest.raises(PermissionDenied):
        services.unit_rename(actor=viewer, unit=tree.c11, name="x")
    assert snapshot() == before


def test_moving_needs_the_right_to_add_at_the_new_parent(tree):
    user = make_user("grantee")
    member(user, tree.c11, "provincial_admin")  # admin of C11 only
    grant(user, tree.p2, "view_orgunit")  # sees P2 through a grant, may not add there
    with pytest.raises(PermissionDenied):
        services.unit_move(actor=user, unit=tree.d111, new_parent=tree.p2)


# --- Levels ----------------------------------------------------------------------------------

def test_levels_are_audited_and_keep_the_tree_valid(tree, admin):
    level = services.level_create(actor=admin, code="grid", name="Grid", rank=4)
    assert OrgAuditEntry.objects.filter(action="level_changed", detail__change="created", detail__level="grid").exists()
    services.level_update(actor=admin, level=level, name="Grid cell", rank=7)
    assert OrgLevel.objects.get(code="grid").rank == 7
    services.level_delete(actor=admin, level=level)
    assert not OrgLevel.objects.filter(code="grid").exists()
    assert OrgAuditEntry.objects.filter(action="level_changed").count() == 4 + 3  # the tree's four, then ours

    refused(services.level_update, "rank", level=tree.levels["city"], rank=0)  # taken by hq
    assert "below its parent" in refused(services.level_update, "rank", level=tree.levels["city"], rank=9)
    refused(services.level_create, "rank", code="again", name="Again", rank=1)  # rank taken
    refused(services.level_create, "code", code="not a slug", name="x", rank=5)
    assert "2 units" in refused(services.level_delete, "level", level=tree.levels["province"])
