"""Trees, users and roles for permission tests, built directly in alpha's schema."""
import itertools

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from org_hierarchy.models import OrgLevel, OrgUnit
from permissions.models import Membership, Role

_codes = itertools.count(1)


def make_levels(*codes):
    return {code: OrgLevel.objects.get_or_create(code=code, defaults={"name": code.title(), "rank": rank})[0]
            for rank, code in enumerate(codes)}


def add_unit(code, level, parent=None):
    if parent is None:
        return OrgUnit.objects.add_root({"code": code, "name": code, "level": level})
    return OrgUnit.objects.add_child(parent, {"code": code, "name": code, "level": level, "parent": parent})


def make_user(name, **extra):
    return get_user_model().objects.create_user(username=f"{name}-{next(_codes)}@example.com", password="x", **extra)


def member(user, unit, role_code):
    return Membership.objects.create(user=user, unit=unit, role=Role.objects.get(code=role_code))


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
def in_alpha(alpha, db):
    with schema_context(alpha.schema_name):
        yield alpha


@pytest.fixture
def tree(in_alpha):
    return Tree()


def client_for(info, user):
    """A test client on ``info``'s host, in English, with ``user`` logged in."""
    client = info.client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def role(code):
    return Role.objects.get(code=code)


@pytest.fixture
def admin(in_alpha):
    """Alpha's tenant admin (a superuser inside the tenant)."""
    return get_user_model().objects.get(username=in_alpha.admin_email)


@pytest.fixture
def padmin(tree):
    """A provincial admin of P1."""
    user = make_user("padmin")
    member(user, tree.p1, "provincial_admin")
    return user


@pytest.fixture
def people(tree):
    """An account manager in each province (at C11 and C21)."""
    am1, am2 = make_user("am1"), make_user("am2")
    member(am1, tree.c11, "account_manager")
    member(am2, tree.c21, "account_manager")
    return am1, am2
