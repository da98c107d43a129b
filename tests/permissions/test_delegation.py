"""Delegation: a provincial admin manages only their province, never beyond their own grants,
never themselves."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from permissions import services
from permissions.models import Membership, OrgUnitUserObjectPermission, PermissionAuditEntry, Role
from permissions.selectors import user_list, visible
from org_hierarchy.models import OrgUnit

from .conftest import make_user, member


@pytest.fixture
def padmin(tree):
    user = make_user("padmin")
    member(user, tree.p1, "provincial_admin")
    return user


def role(code):
    return Role.objects.get(code=code)


def test_provincial_admin_sees_only_the_province(tree, padmin):
    assert set(visible(padmin, OrgUnit.objects.all())) == {tree.p1, tree.c11, tree.c12}


def test_creates_a_user_inside_the_province_with_an_audit_entry(tree, padmin):
    user, password = services.user_create(actor=padmin, email="New@Example.com", unit=tree.c11, role=role("account_manager"))
    assert user.username == "new@example.com" and password
    assert Membership.objects.filter(user=user, unit=tree.c11).exists()
    assert PermissionAuditEntry.objects.filter(actor=padmin, action="user_created").exists()
    assert user in user_list(user=padmin)


def test_cannot_create_a_user_outside_the_province(tree, padmin):
    with pytest.raises(Http404):
        services.user_create(actor=padmin, email="x@example.com", unit=tree.c21, role=role("account_manager"))
    with pytest.raises(PermissionDenied):  # HQ is visible? no: not in the subtree either
        services.user_create(actor=padmin, email="y@example.com", unit=tree.p1, role=role("tenant_admin"))


def test_cannot_grant_a_role_holding_permissions_they_lack(tree, padmin):
    target = make_user("am")
    member(target, tree.c11, "account_manager")
    with pytest.raises(PermissionDenied):
        services.membership_add(actor=padmin, user=target, unit=tree.c11, role=role("tenant_admin"))
    assert not Membership.objects.filter(user=target, role__code="tenant_admin").exists()


def test_cannot_promote_themselves(tree, padmin):
    with pytest.raises(PermissionDenied):
        services.membership_add(actor=padmin, user=padmin, unit=tree.c11, role=role("account_manager"))
    own = Membership.objects.get(user=padmin)
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=padmin, membership=own)
    with pytest.raises(PermissionDenied):
        services.grant_add(actor=padmin, user=padmin, obj=tree.c21, action="view")


def test_cannot_touch_users_outside_the_province(tree, padmin):
    other = make_user("am2")
    member(other, tree.c21, "account_manager")
    with pytest.raises(Http404):
        services.user_update(actor=padmin, user=other, first_name="X")
    with pytest.raises(Http404):
        services.user_deactivate(actor=padmin, user=other)
    with pytest.raises(Http404):
        services.membership_add(actor=padmin, user=other, unit=tree.c11, role=role("account_manager"))


def test_cannot_change_roles_or_modules(tree, padmin):
    with pytest.raises(PermissionDenied):
        services.role_update(actor=padmin, role=role("account_manager"), permissions=["org_unit.view"])
    with pytest.raises(PermissionDenied):
        services.module_set(actor=padmin, module="campaigns", level=tree.levels["city"], enabled=False)


def test_grants_only_what_they_hold(tree, padmin):
    target = make_user("am")
    member(target, tree.c21, "account_manager")
    services.grant_add(actor=padmin, user=target, obj=tree.c11, action="change")
    assert OrgUnitUserObjectPermission.objects.filter(user=target, content_object=tree.c11).exists()
    with pytest.raises(Http404):
        services.grant_add(actor=padmin, user=target, obj=tree.c21, action="view")
    with pytest.raises(ValidationError) as exc:
        services.grant_add(actor=padmin, user=target, obj=tree.c11, action="export")
    assert "action" in exc.value.message_dict


def test_cannot_create_or_change_units_outside_the_province(tree, padmin):
    from org_hierarchy import services as org_services

    city = tree.levels["city"]
    with pytest.raises(Http404):
        org_services.unit_create(actor=padmin, code="X1", name="X1", level=city, parent=tree.p2)
    with pytest.raises(Http404):
        org_services.unit_rename(actor=padmin, unit=tree.c21, name="Renamed")
    with pytest.raises(Http404):  # taking a city out to another province
        org_services.unit_move(actor=padmin, unit=tree.c11, new_parent=tree.p2)
    with pytest.raises(PermissionDenied):  # a new top unit is a tenant admin's call
        org_services.unit_create(actor=padmin, code="X2", name="X2", level=tree.levels["hq"])
    assert not OrgUnit.objects.filter(code__in=["X1", "X2"]).exists()
    inside = org_services.unit_create(actor=padmin, code="C13", name="C13", level=city, parent=tree.p1)
    assert set(visible(padmin, OrgUnit.objects.all())) == {tree.p1, tree.c11, tree.c12, inside}


def test_lists_stop_at_the_province(tree, padmin):
    from permissions.selectors import grant_list, membership_list

    inside, outside = make_user("in"), make_user("out")
    member(inside, tree.c12, "account_manager")
    member(outside, tree.c21, "account_manager")
    services.grant_add(actor="system", user=inside, obj=tree.c21, action="view")
    services.grant_add(actor="system", user=outside, obj=tree.c12, action="view")
    assert set(user_list(user=padmin)) == {padmin, inside}
    assert {m.user for m in membership_list(user=padmin)} == {padmin, inside}
    assert [(g.user, g.content_object) for g in grant_list(user=padmin)] == [(outside, tree.c12)]
