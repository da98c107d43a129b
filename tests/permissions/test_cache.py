"""Cached scopes: served from Redis without queries, and stale at once after any change."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from org_hierarchy import services as org_services
from permissions import scope as scope_module, services
from permissions.models import Role
from permissions.scope import invalidate_scopes, resolve_scope
from permissions.selectors import can

from .conftest import make_user, member


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the writes in the block as if their transaction committed (on-commit hooks run)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def fresh(user):
    user.__dict__.pop("_kam_scope", None)  # a new request: no per-object memo
    return user


def test_a_cached_scope_costs_no_query(tree, committed):
    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
    with CaptureQueriesContext(connection) as cold:
        first = resolve_scope(fresh(user))
    with CaptureQueriesContext(connection) as warm:
        second = resolve_scope(fresh(user))
    assert len(cold) == 3 and len(warm) == 0
    assert first == second and second.units("customer.add") == {tree.c11.pk}


def test_membership_change_is_visible_at_once(tree, committed):
    actor, user = make_user("root", is_superuser=True), make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
    assert resolve_scope(user).units("customer.view") == {tree.c11.pk}
    with committed():
        membership = services.membership_add(actor=actor, user=user, unit=tree.p2, role=Role.objects.get(code="account_manager"))
    assert resolve_scope(user).units("customer.view") == {tree.c11.pk, tree.p2.pk, tree.c21.pk}
    with committed():
        services.membership_remove(actor=actor, membership=membership)
    assert resolve_scope(fresh(user)).units("customer.view") == {tree.c11.pk}


def test_move_is_visible_at_once(tree, committed):
    p1_user, p2_user = make_user("p1"), make_user("p2")
    with committed():
        member(p1_user, tree.p1, "provincial_manager")
        member(p2_user, tree.p2, "provincial_manager")
    assert can(p1_user, "customer.view", tree.c12) and not can(p2_user, "customer.view", tree.c12)
    with committed():
        org_services.unit_move(actor="system", unit=tree.c12, new_parent=tree.p2)
    tree.c12.refresh_from_db()
    assert not can(fresh(p1_user), "customer.view", tree.c12)
    assert can(fresh(p2_user), "customer.view", tree.c12)


def test_role_change_is_visible_at_once(tree, committed):
    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
    assert not can(user, "customer.export", tree.c11)
    role = Role.objects.get(code="account_manager")
    with committed():
        services.role_update(actor="system", role=role, permissions=role.permissions + ["customer.export"])
    assert can(user, "customer.export", tree.c11)


def test_grant_is_visible_at_once(tree, committed):
    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
        services.grant_add(actor="system", user=user, obj=tree.c21, action="view")
    assert can(user, "org_unit.view", tree.c21) and not can(user, "org_unit.view", tree.c12)
    with committed():
        services.grant_remove(actor="system", user=user, obj=tree.c21, action="view")
    assert not can(user, "org_unit.view", tree.c21)


def test_uncommitted_changes_are_never_cached(tree, committed):
    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
    assert resolve_scope(user).units("customer.view") == {tree.c11.pk}
    with transaction.atomic():
        member(user, tree.p2, "account_manager")  # the post_save hook marks the scopes pending
        assert tree.c21.pk in resolve_scope(fresh(user)).units("customer.view")
        transaction.set_rollback(True)
    with committed():
        invalidate_scopes()  # the test's outer transaction never ends: stand in for its end
    assert resolve_scope(fresh(user)).units("customer.view") == {tree.c11.pk}


def test_generation_is_per_tenant(alpha, beta, db):
    with schema_context(alpha.schema_name):
        before = scope_module._generation()
    with schema_context(beta.schema_name):
        invalidate_scopes()
    with schema_context(alpha.schema_name):
        assert scope_module._generation() == before
        invalidate_scopes()
        assert scope_module._generation() > before


def test_invalidation_bumps_now_and_again_on_commit(tree, committed):
    with committed():
        invalidate_scopes()  # settle the tree's own pending invalidation first
    start = scope_module._generation()
    with committed():
        invalidate_scopes()
        during = scope_module._generation()
        assert during > start
    assert scope_module._generation() > during


# --- Direct grants ride the cached scope; group rows are read inside each statement -----------

def test_cached_grant_ids_cost_no_query_and_follow_grant_changes_at_once(tree, committed):
    from org_hierarchy.models import OrgUnit
    from permissions.models import OrgUnitUserObjectPermission
    from permissions.selectors import grant_ids, visible

    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
        services.grant_add(actor="system", user=user, obj=tree.c21, action="view")
    assert grant_ids(fresh(user), OrgUnit, "view") == {tree.c21.pk}
    list(visible(fresh(user), OrgUnit.objects.all()))  # the scope cached too
    with CaptureQueriesContext(connection) as warm:
        assert grant_ids(fresh(user), OrgUnit, "view") == {tree.c21.pk}
        ids = set(visible(user, OrgUnit.objects.all()).values_list("pk", flat=True))
    assert len(warm) == 1 and tree.c21.pk in ids  # the list itself, nothing for scope or grants
    with committed():
        services.grant_remove(actor="system", user=user, obj=tree.c21, action="view")
    assert grant_ids(fresh(user), OrgUnit, "view") == set()
    # A grant row written outside the services (admin, shell) makes the cache stale too.
    with committed():
        services.grant_add(actor="system", user=user, obj=tree.c12, action="view")
    row = OrgUnitUserObjectPermission.objects.get(user=user, content_object=tree.c12)
    assert grant_ids(fresh(user), OrgUnit, "view") == {tree.c12.pk}
    with committed():
        OrgUnitUserObjectPermission.objects.filter(pk=row.pk).delete()
    assert grant_ids(fresh(user), OrgUnit, "view") == set()
    with committed():
        OrgUnitUserObjectPermission.objects.create(user=user, content_object=tree.c21, permission=row.permission)
    assert grant_ids(fresh(user), OrgUnit, "view") == {tree.c21.pk}


def test_a_group_moved_outside_the_services_counts_at_once(tree, committed):
    """No cache holds a scope's group rows: a group customer moved by a plain UPDATE (as an
    import writes) takes its members' visibility along on the very next read."""
    from key_accounts import selectors, services as customer_services
    from key_accounts.models import Customer

    user = make_user("am")
    with committed():
        member(user, tree.c11, "account_manager")
    group = customer_services.customer_create(actor="system", data={"name": "集团", "org_unit": tree.c21, "is_group": True})
    branch = customer_services.customer_create(actor="system", data={"name": "分公司", "org_unit": tree.c21, "group": group})
    listed = lambda: set(selectors.customers(user=fresh(user)).values_list("pk", flat=True))  # noqa: E731
    assert listed() == set()
    Customer.objects.filter(pk=group.pk).update(org_unit=tree.c11)
    assert listed() == {group.pk, branch.pk}
    assert selectors.customer_count(selectors.customer_list(user=fresh(user))) == 2
    Customer.objects.filter(pk=group.pk).update(org_unit=tree.c21)
    assert listed() == set()
