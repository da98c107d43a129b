from django.db import connection
from django.test.utils import CaptureQueriesContext

from permissions.scope import resolve_scope

from .conftest import make_user, member


def test_role_at_a_province_covers_its_subtree_only(tree):
    user = make_user("pm")
    member(user, tree.p1, "provincial_manager")
    scope = resolve_scope(user)
    assert scope.units("customer.view") == {tree.p1.pk, tree.c11.pk, tree.c12.pk}
    assert not scope.allows("customer.view", tree.c21.pk)
    assert not scope.allows("org_unit.change", tree.c11.pk)


def test_cold_resolution_takes_three_queries(tree):
    user = make_user("pm")
    member(user, tree.p1, "provincial_manager")
    member(user, tree.c21, "account_manager")
    with CaptureQueriesContext(connection) as queries:
        scope = resolve_scope(user)
    assert len(queries) == 3, [q["sql"] for q in queries]
    assert scope.units("customer.add") == {tree.p1.pk, tree.c11.pk, tree.c12.pk, tree.c21.pk}
