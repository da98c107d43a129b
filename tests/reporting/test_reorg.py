"""Re-orgs: after a move or a merge the current figures follow the new tree (refreshed through
the re-org's audit entries), while figures as of an earlier date keep the tree of that date."""
import datetime
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from org_hierarchy import services as org_services
from org_hierarchy.models import OrgUnitParentPeriod
from reporting import selectors, services

from .conftest import snapshot, this_month
from .test_api import FIGURES, RANKING, ok, revenue_of
from tests.support.people import client_for

LONG_AGO = timezone.make_aware(datetime.datetime(2020, 1, 1))
YESTERDAY = timezone.localdate() - datetime.timedelta(days=1)


@pytest.fixture
def dated(tree):
    """The fixture tree with the parent periods the org services would have written in 2020."""
    OrgUnitParentPeriod.objects.bulk_create(
        OrgUnitParentPeriod(unit=unit, parent_id=unit.parent_id, valid_from=LONG_AGO) for unit in tree.all()
    )
    return tree


@pytest.fixture
def rolled(dated, billed, people):
    services.recompute()
    return billed


def subtree_revenue(client, unit, **params):
    return Decimal(ok(client.get(FIGURES, {"unit": unit.pk, **params}))["subtree"]["revenue"])


C12 = revenue_of(1)
P1_BEFORE = revenue_of(0) + revenue_of(1) + revenue_of(4)
P2_BEFORE = revenue_of(2) + revenue_of(3) + revenue_of(5)


def test_after_a_move_current_figures_follow_the_new_tree_and_as_of_figures_keep_the_old(
    in_alpha, rolled, tree, people, committing,
):
    with committing():
        org_services.unit_move(actor="system", unit=tree.c12, new_parent=tree.p2)
    hq = client_for(in_alpha, people.hq)
    assert subtree_revenue(hq, tree.p1) == P1_BEFORE - C12
    assert subtree_revenue(hq, tree.p2) == P2_BEFORE + C12
    assert subtree_revenue(hq, tree.hq) == P1_BEFORE + P2_BEFORE
    old = {"as_of": YESTERDAY.isoformat()}
    assert subtree_revenue(hq, tree.p1, **old) == P1_BEFORE
    assert subtree_revenue(hq, tree.p2, **old) == P2_BEFORE
    ranking = ok(hq.get(RANKING, {"unit": tree.p1.pk, **old}))
    assert [row["unit"]["code"] for row in ranking["children"]] == ["C11", "C12"]  # by revenue
    assert subtree_revenue(hq, tree.p1, as_of=timezone.localdate().isoformat()) == P1_BEFORE - C12
    # The refreshed figures are exactly what a full recompute gives.
    refreshed = snapshot()
    services.recompute()
    assert snapshot() == refreshed


def test_as_of_figures_leave_out_units_the_viewer_no_longer_covers(in_alpha, rolled, tree, people, committing):
    with committing():
        org_services.unit_move(actor="system", unit=tree.c12, new_parent=tree.p2)
    province = client_for(in_alpha, people.province)
    # P1's tree of yesterday held C12, which the P1 manager no longer covers: it is left out.
    assert subtree_revenue(province, tree.p1, as_of=YESTERDAY.isoformat()) == P1_BEFORE - C12
    assert province.get(FIGURES, {"unit": tree.c12.pk, "as_of": YESTERDAY.isoformat()}).status_code == 404
    ranking = ok(province.get(RANKING, {"unit": tree.p1.pk, "as_of": YESTERDAY.isoformat()}))
    assert [row["unit"]["code"] for row in ranking["children"]] == ["C11"]


def test_after_a_merge_totals_stay_and_the_survivor_serves_the_customers(in_alpha, rolled, tree, people, committing, admin):
    with committing():
        org_services.unit_merge(actor="system", source=tree.c12, survivor=tree.c11)
    hq = client_for(in_alpha, people.hq)
    assert subtree_revenue(hq, tree.c11) == revenue_of(0) + revenue_of(4) + C12
    assert subtree_revenue(hq, tree.p1) == P1_BEFORE
    assert subtree_revenue(hq, tree.p1, as_of=YESTERDAY.isoformat()) == P1_BEFORE
    refreshed = snapshot()
    services.recompute()
    assert snapshot() == refreshed


def test_as_of_decomposition_reads_stored_subtrees_where_the_tree_did_not_change(rolled, tree, committing):
    with committing():
        org_services.unit_move(actor="system", unit=tree.c12, new_parent=tree.p2)
    from reporting import asof

    now = asof.current_tree()
    parts = asof.Decomposition(now, asof.tree_as_of(YESTERDAY, now)).parts(tree.hq.pk)
    # HQ's set of units is the same either way: its stored subtree row is exact.
    assert parts == ({tree.hq.pk}, set())
    p1 = asof.Decomposition(now, asof.tree_as_of(YESTERDAY, now)).parts(tree.p1.pk)
    assert p1 == (set(), {tree.p1.pk, tree.c11.pk, tree.c12.pk})  # cities are leaves: own rows only
    with pytest.raises(Http404):  # the selectors check the viewer themselves
        selectors.unit_figures(user=None, unit=tree.p1, filters=selectors.Filters(this_month(), this_month()))
