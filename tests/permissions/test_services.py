"""Services: roles, memberships, users, grants and module toggles; validation, audit, refusals."""
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from permissions import services
from permissions.models import Membership, ModuleToggle, OrgUnitUserObjectPermission, PermissionAuditEntry, Role
from permissions.scope import resolve_scope
from permissions.selectors import can, module_enabled

from .conftest import add_unit, make_user, member


def role(code):
    return Role.objects.get(code=code)


def errors_of(exc_info):
    return exc_info.value.message_dict


@pytest.fixture
def hq_admin(tree):
    """A tenant-wide administrator through a membership (not a superuser)."""
    user = make_user("hq-admin")
    member(user, tree.hq, "tenant_admin")
    return user


# --- Roles -------------------------------------------------------------------------------

def test_role_create_with_audit(tree, hq_admin):
    created = services.role_create(actor=hq_admin, code="sales", name=" Sales ", permissions=["customer.view", "customer.view"])
    assert (created.name, created.permissions, created.is_builtin) == ("Sales", ["customer.view"], False)
    entry = PermissionAuditEntry.objects.get(action="role_created")
    assert entry.actor == hq_admin and entry.detail["role"] == "sales"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"code": "x", "name": "X", "permissions": ["customer.fly"]}, "permissions"),
        ({"code": "account_manager", "name": "X"}, "code"),
        ({"code": "bad code!", "name": "X"}, "code"),
        ({"code": "x", "name": "  "}, "name"),
    ],
)
def test_role_create_rejects_bad_input(tree, kwargs, field):
    before = Role.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.role_create(actor="cli:root", **kwargs)
    assert field in errors_of(exc)
    assert Role.objects.count() == before


def test_role_update_changes_the_set_and_audits(tree, hq_admin):
    services.role_update(actor=hq_admin, role=role("account_manager"), permissions=["customer.view", "report.view"])
    assert role("account_manager").permissions == ["customer.view", "report.view"]
    entry = PermissionAuditEntry.objects.get(action="role_changed")
    assert entry.detail["removed"] == ["customer.add", "customer.change", "org_unit.view"]


def test_role_update_rejects_unknown_permissions_and_changes_nothing(tree):
    before = role("hq_analyst").permissions
    with pytest.raises(ValidationError) as exc:
        services.role_update(actor="system", role=role("hq_analyst"), permissions=["report.view", "nope.nope"])
    assert "permissions" in errors_of(exc)
    assert role("hq_analyst").permissions == before


def test_role_changes_need_the_permission_at_every_root(tree, hq_admin):
    other_root = add_unit("R2", tree.levels["hq"])
    with pytest.raises(PermissionDenied):  # hq_admin does not cover the second root
        services.role_update(actor=hq_admin, role=role("account_manager"), name="AM")
    member(hq_admin, other_root, "tenant_admin")
    services.role_update(actor=hq_admin, role=role("account_manager"), name="AM")
    assert role("account_manager").name == "AM"


def test_a_role_never_gets_a_permission_its_editor_lacks(tree):
    editor = make_user("editor")
    Role.objects.create(code="role-editor", name="Role editor", permissions=["role.view", "role.change", "customer.view"])
    member(editor, tree.hq, "role-editor")
    with pytest.raises(PermissionDenied):
        services.role_update(actor=editor, role=role("hq_analyst"), permissions=["customer.view", "customer.delete"])
    services.role_update(actor=editor, role=role("hq_analyst"), permissions=["customer.view"])  # removing is fine
    assert role("hq_analyst").permissions == ["customer.view"]
    with pytest.raises(PermissionDenied):
        services.role_create(actor=editor, code="x", name="X")  # no role.add


def test_role_delete_refuses_a_role_in_use(tree):
    user = make_user("am")
    member(user, tree.c11, "account_manager")
    with pytest.raises(ValidationError) as exc:
        services.role_delete(actor="system", role=role("account_manager"))
    assert "role" in errors_of(exc)
    assert Role.objects.filter(code="account_manager").exists()
    spare = services.role_create(actor="system", code="spare", name="Spare")
    services.role_delete(actor="system", role=spare)
    assert not Role.objects.filter(code="spare").exists()
    assert PermissionAuditEntry.objects.filter(action="role_deleted", detail__role="spare").exists()


# --- Memberships and users -----------------------------------------------------------------

def test_membership_add_and_remove_with_audit(tree, hq_admin):
    user = make_user("am")
    membership = services.membership_add(actor=hq_admin, user=user, unit=tree.c21, role=role("account_manager"))
    assert membership.created_by == hq_admin and can(user, "customer.add", tree.c21)
    with pytest.raises(ValidationError) as exc:
        services.membership_add(actor=hq_admin, user=user, unit=tree.c21, role=role("account_manager"))
    assert "role" in errors_of(exc)
    services.membership_remove(actor=hq_admin, membership=membership)
    assert not can(user, "customer.add", tree.c21)
    assert list(PermissionAuditEntry.objects.filter(actor=hq_admin).values_list("action", flat=True)) == [
        "membership_removed", "membership_added",
    ]


def test_a_membership_at_a_closed_unit_grants_nothing(tree):
    user = make_user("am")
    member(user, tree.c11, "account_manager")
    member(user, tree.p2, "hq_analyst")
    tree.p2.is_active = False
    tree.p2.save()
    scope = resolve_scope(user)
    assert scope.units("customer.view") == {tree.c11.pk}
    with pytest.raises(ValidationError) as exc:
        services.membership_add(actor="system", user=user, unit=tree.p2, role=role("account_manager"))
    assert "unit" in errors_of(exc)


def test_closed_units_inside_an_open_subtree_stay_in_scope(tree):
    user = make_user("pm")
    member(user, tree.p1, "provincial_manager")
    tree.c12.is_active = False
    tree.c12.save()
    assert tree.c12.pk in resolve_scope(user).units("customer.view")


def test_user_create_returns_a_password_and_validates(tree, hq_admin):
    user, password = services.user_create(actor=hq_admin, email="li.lei@example.com", first_name="Lei", last_name="Li",
                                          unit=tree.c11, role=role("account_manager"))
    assert user.check_password(password) and user.username == "li.lei@example.com"
    for email, field in [("LI.LEI@example.com", "email"), ("not-an-email", "email")]:
        with pytest.raises(ValidationError) as exc:
            services.user_create(actor=hq_admin, email=email, unit=tree.c11, role=role("account_manager"))
        assert field in errors_of(exc)
    with pytest.raises(ValidationError) as exc:
        services.user_create(actor=hq_admin, email="han@example.com", password="123", unit=tree.c11, role=role("account_manager"))
    assert "password" in errors_of(exc)
    assert not get_user_model().objects.filter(username="han@example.com").exists()


def test_user_update_and_deactivate(tree, hq_admin):
    user, _password = services.user_create(actor=hq_admin, email="a@example.com", unit=tree.c11, role=role("account_manager"))
    services.user_update(actor=hq_admin, user=user, first_name="Mei", email="b@example.com")
    user.refresh_from_db()
    assert (user.first_name, user.username, user.email) == ("Mei", "b@example.com", "b@example.com")
    services.user_deactivate(actor=hq_admin, user=user)
    user.refresh_from_db()
    assert not user.is_active and not can(user, "customer.view", tree.c11)
    with pytest.raises(PermissionDenied):
        services.user_deactivate(actor=hq_admin, user=hq_admin)
    services.user_activate(actor=hq_admin, user=user)
    user.refresh_from_db()
    assert user.is_active


def test_a_user_working_in_two_provinces_is_not_managed_by_one_of_them(tree):
    padmin = make_user("padmin")
    member(padmin, tree.p1, "provincial_admin")
    both = make_user("both")
    member(both, tree.c11, "account_manager")
    member(both, tree.c21, "account_manager")
    with pytest.raises(PermissionDenied):  # visible (works in P1) but not only there
        services.user_update(actor=padmin, user=both, email="takeover@example.com")
    with pytest.raises(PermissionDenied):
        services.user_deactivate(actor=padmin, user=both)


def test_nobody_but_a_superuser_manages_a_superuser(tree, hq_admin):
    root = make_user("root", is_superuser=True)
    member(root, tree.c11, "account_manager")
    with pytest.raises(PermissionDenied):
        services.user_update(actor=hq_admin, user=root, email="mine@example.com")


# --- Grants --------------------------------------------------------------------------------

def test_grant_covers_one_unit_not_its_subtree_and_is_idempotent(tree):
    user = make_user("am")
    services.grant_add(actor="system", user=user, obj=tree.p2, action="view")
    services.grant_add(actor="system", user=user, obj=tree.p2, action="view")
    assert OrgUnitUserObjectPermission.objects.filter(user=user).count() == 1
    assert can(user, "org_unit.view", tree.p2) and not can(user, "org_unit.view", tree.c21)
    assert not can(user, "customer.view", tree.p2)  # a grant is for its own resource only
    assert PermissionAuditEntry.objects.filter(action="grant_added").count() == 1
    services.grant_remove(actor="system", user=user, obj=tree.p2, action="view")
    assert not can(user, "org_unit.view", tree.p2)


def test_grant_of_an_unknown_action_is_refused(tree):
    user = make_user("am")
    with pytest.raises(ValidationError) as exc:
        services.grant_add(actor="system", user=user, obj=tree.p2, action="fly")
    assert "action" in errors_of(exc)


# --- Module toggles ------------------------------------------------------------------------

def test_module_is_off_only_when_off_at_every_level_of_the_user(tree, hq_admin):
    city_user, both = make_user("city"), make_user("both")
    member(city_user, tree.c11, "account_manager")
    member(both, tree.c11, "account_manager")
    member(both, tree.p2, "account_manager")
    assert module_enabled(city_user, "campaigns")
    services.module_set(actor=hq_admin, module="campaigns", level=tree.levels["city"], enabled=False)
    assert not module_enabled(city_user, "campaigns")
    assert module_enabled(both, "campaigns")  # still on at the province level
    assert module_enabled(city_user, "customers")
    assert ModuleToggle.objects.get(module="campaigns").enabled is False
    assert PermissionAuditEntry.objects.filter(action="module_set", detail__module="campaigns").exists()
    services.module_set(actor=hq_admin, module="campaigns", level=tree.levels["city"], enabled=True)
    assert module_enabled(city_user, "campaigns")


def test_module_set_validation_and_refusal(tree):
    with pytest.raises(ValidationError) as exc:
        services.module_set(actor="system", module="teleportation", level=tree.levels["city"], enabled=False)
    assert "module" in errors_of(exc)
    padmin = make_user("padmin")
    member(padmin, tree.p1, "provincial_admin")
    with pytest.raises(PermissionDenied):
        services.module_set(actor=padmin, module="campaigns", level=tree.levels["city"], enabled=False)
    assert not ModuleToggle.objects.exists()


def test_superusers_see_every_module_and_users_without_membership_none(tree):
    services.module_set(actor="system", module="campaigns", level=tree.levels["hq"], enabled=False)
    assert module_enabled(make_user("root", is_superuser=True), "campaigns")
    assert not module_enabled(make_user("nobody"), "campaigns")
    assert not Membership.objects.filter(user__username__startswith="nobody").exists()
