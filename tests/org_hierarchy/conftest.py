"""A small org tree in alpha's schema, built through the services (so it has its parent periods
and audit entries like a real one), and helpers to prove that a refused change changed nothing."""
import pytest
from django.utils import translation

from org_hierarchy import services
from org_hierarchy.models import OrgAuditEntry, OrgUnit, OrgUnitParentPeriod
from permissions.models import Membership, OrgUnitUserObjectPermission
from tests.support.people import client_for, make_user, member  # noqa: F401  (imported by the test modules)


class Tree:
    """HQ -> P1 (C11 -> D111, C12), P2 (C21); levels hq, province, city, district (ranks 0-3)."""

    def __init__(self, actor="pytest"):
        self.levels = {
            code: services.level_create(actor=actor, code=code, name=code.title(), rank=rank)
            for rank, code in enumerate(["hq", "province", "city", "district"])
        }
        self.hq = self.add("HQ", "hq", None)
        self.p1 = self.add("P1", "province", self.hq)
        self.p2 = self.add("P2", "province", self.hq)
        self.c11 = self.add("C11", "city", self.p1)
        self.c12 = self.add("C12", "city", self.p1)
        self.c21 = self.add("C21", "city", self.p2)
        self.d111 = self.add("D111", "district", self.c11)
        self.refresh()

    def add(self, code, level, parent):
        return services.unit_create(actor="pytest", code=code, name=f"Unit {code}", level=self.levels[level], parent=parent)

    def refresh(self):
        for unit in self.all():
            unit.refresh_from_db()

    def all(self):
        return [self.hq, self.p1, self.p2, self.c11, self.c12, self.c21, self.d111]


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English (the default language is Chinese)."""
    with translation.override("en"):
        yield


@pytest.fixture
def tree(in_alpha):
    return Tree()


def snapshot():
    """Everything a reorganisation may touch, to compare before and after a refused one."""
    units = list(OrgUnit.objects.order_by("code").values_list("code", "name", "path", "parent_id", "numchild", "is_active"))
    periods = list(OrgUnitParentPeriod.objects.order_by("pk").values_list("unit_id", "parent_id", "valid_from", "valid_to"))
    return {
        "units": units,
        "periods": periods,
        "audit": OrgAuditEntry.objects.count(),
        "memberships": sorted(Membership.objects.values_list("user_id", "unit_id", "role_id")),
        "grants": sorted(OrgUnitUserObjectPermission.objects.values_list("user_id", "content_object_id", "permission_id")),
    }


def assert_tree_consistent():
    """treebeard finds no problem, and every parent FK agrees with the materialised path."""
    assert all(not problem for problem in OrgUnit.objects.find_problems()), OrgUnit.objects.find_problems()
    by_path = dict(OrgUnit.objects.values_list("path", "pk"))
    for unit in OrgUnit.objects.all():
        expected = by_path.get(unit.path[: -OrgUnit.steplen]) if unit.depth > 1 else None
        assert unit.parent_id == expected, f"{unit.code}: parent FK {unit.parent_id}, path says {expected}"
        open_periods = list(unit.parent_periods.filter(valid_to__isnull=True).values_list("parent_id", flat=True))
        assert open_periods == ([unit.parent_id] if unit.is_active else []), unit.code


@pytest.fixture
def viewer(tree):
    """An account manager at P1: may view its units, not change them."""
    user = make_user("viewer")
    member(user, tree.p1, "account_manager")
    return user
