"""Trees, users and roles for permission tests, built directly in alpha's schema."""
import pytest

from org_hierarchy.models import OrgLevel, OrgUnit
from permissions.models import Role
from tests.support.people import client_for, make_user, member  # noqa: F401  (imported by the test modules)


def make_levels(*codes):
    return {code: OrgLevel.objects.get_or_create(code=code, defaults={"name": code.title(), "rank": rank})[0]
            for rank, code in enumerate(codes)}


def add_unit(code, level, parent=None):
    if parent is None:
        return OrgUnit.objects.add_root({"code": code, "name": code, "level": level})
    return OrgUnit.objects.add_child(parent, {"code": code, "name": code, "level": level, "parent": parent})


class Tree:
    """HQ -> provinces P1, P2 -> cities C11, C12 (under P1), C21 (under P2)."""

    def __init__(self):
        self.levels = make_levels("hq", "province", "city")
        self.hq = add_unit("HQ", self.levels["hq"])
        self.p1 = add_unit("P1", self.levels["province"], self.hq)
        self.p2 = add_unit("P2", self.levels["province"], self.hq)
        self.c11 = add_unit("C11", self.levels["city"], self.p1)
        self.c12 = add_unit("C12", self.levels["city"], self.p1)
        self.c21 = add_unit("C21", self.levels["city"], self.p2)
        for unit in self.all():
            unit.refresh_from_db()

    def all(self):
        return [self.hq, self.p1, self.p2, self.c11, self.c12, self.c21]


@pytest.fixture
def tree(in_alpha):
    return Tree()


def role(code):
    return Role.objects.get(code=code)


@pytest.fixture
def people(tree):
    """An account manager in each province (at C11 and C21)."""
    am1, am2 = make_user("am1"), make_user("am2")
    member(am1, tree.c11, "account_manager")
    member(am2, tree.c21, "account_manager")
    return am1, am2
