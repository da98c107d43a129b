"""The permission matrix: each built-in role, held at HQ, a province or a city, against every
action of the catalogue, on units inside and outside the membership's subtree."""
import pytest

from org_hierarchy.models import OrgUnit
from permissions.catalog import ALL_PERMISSIONS, BUILTIN_ROLES
from permissions.models import Role
from permissions.selectors import can, visible

from .conftest import make_user, member

# Pinned by hand from the issue, so a careless catalogue edit fails here too.
EXPECTED = {
    "tenant_admin": {"role.change": True, "module.change": True, "customer.delete": True, "org_unit.add": True},
    "hq_analyst": {"customer.view": True, "customer.export": True, "customer.change": False, "org_unit.change": False,
                   "user.view": False},
    "provincial_manager": {"customer.delete": True, "customer.assign": True, "user.view": True, "user.add": False,
                           "org_unit.change": False, "membership.add": False},
    "provincial_admin": {"org_unit.add": True, "user.add": True, "membership.add": True, "object_grant.add": True,
                         "customer.view": True, "role.view": True, "role.change": False, "module.change": False},
    "account_manager": {"customer.add": True, "customer.change": True, "customer.delete": False,
                        "customer.export": False, "report.export": False, "user.view": False},
}

LEVELS = {"hq": "hq", "province": "p1", "city": "c11"}


def inside_and_outside(tree, at):
    unit = getattr(tree, at)
    inside = [u for u in tree.all() if u.path.startswith(unit.path)]
    return inside, [u for u in tree.all() if u not in inside]


def test_every_builtin_role_is_seeded_from_the_catalogue(in_alpha):
    for code, (_name, permissions) in BUILTIN_ROLES.items():
        role = Role.objects.get(code=code)
        assert role.is_builtin and sorted(role.permissions) == sorted(permissions)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("role_code", BUILTIN_ROLES)
def test_matrix(tree, role_code, level):
    user = make_user(role_code)
    member(user, getattr(tree, LEVELS[level]), role_code)
    held = set(Role.objects.get(code=role_code).permissions)
    for code, expected in EXPECTED[role_code].items():
        assert (code in held) is expected, code

    inside, outside = inside_and_outside(tree, LEVELS[level])
    for code in ALL_PERMISSIONS:
        for unit in inside:
            assert can(user, code, unit) is (code in held), (code, unit.code)
        for unit in outside:
            assert can(user, code, unit) is False, (code, unit.code)
    for action in ("view", "add", "change", "delete"):
        expected = set(inside) if f"org_unit.{action}" in held else set()
        assert set(visible(user, OrgUnit.objects.all(), action=action)) == expected, action


def test_several_memberships_add_up(tree):
    user = make_user("two-hats")
    member(user, tree.c11, "account_manager")
    member(user, tree.p2, "hq_analyst")
    assert can(user, "customer.add", tree.c11) and not can(user, "customer.add", tree.c21)
    assert can(user, "customer.export", tree.c21) and not can(user, "customer.export", tree.c11)
    assert set(visible(user, OrgUnit.objects.all())) == {tree.c11, tree.p2, tree.c21}


def test_superuser_may_do_everything_and_inactive_users_nothing(tree):
    admin = make_user("root", is_superuser=True)
    assert all(can(admin, code, tree.c21) for code in ALL_PERMISSIONS)
    assert visible(admin, OrgUnit.objects.all()).count() == OrgUnit.objects.count()
    gone = make_user("gone")
    member(gone, tree.hq, "tenant_admin")
    gone.is_active = False
    gone.save()
    assert not can(gone, "org_unit.view", tree.hq)
    assert not visible(gone, OrgUnit.objects.all()).exists()
