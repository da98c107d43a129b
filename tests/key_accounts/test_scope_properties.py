"""Property-based: on random trees with random customers (group customers and their members
served anywhere in the tree), random roles, memberships and direct grants, every customer read
answers exactly what a brute-force reference says: the selectors (list, filters, caller-ID,
get by id with 404/403) and the API (list, search, caller-ID, detail, history).

The reference knows nothing of paths, scopes or caches: it walks parent links in plain Python
and applies the rules as docs/permissions.md states them (a role on a unit covers its subtree;
a grant covers one customer; whoever may view or export a group may view or export its
members). Every example builds its world inside a savepoint that is rolled back afterwards.
"""
import itertools
from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from hypothesis import HealthCheck, example, given, settings, strategies as st

from key_accounts import selectors, services
from org_hierarchy.models import OrgUnit
from permissions.models import Membership, Role
from permissions.services import grant_add
from tests.permissions.conftest import make_levels
from tests.support.people import make_user

MAX_DEPTH = 5
USERS = 3
CODES = ("customer.view", "customer.change", "customer.export", "org_unit.view")
GRANT_ACTIONS = ("view", "change", "export")
PHONES = ("13800000001", "13800000002", "02088880003")
EXAMPLES = 40
_codes = itertools.count()


# --- The generated world -------------------------------------------------------------------------

@st.composite
def worlds(draw):
    size = draw(st.integers(1, 8))
    parents, depths = [None], [1]
    for index in range(1, size):
        parent = None if draw(st.integers(0, 9)) == 0 else draw(st.integers(max(0, index - 3), index - 1))
        if parent is not None and depths[parent] >= MAX_DEPTH:
            parent = 0
        parents.append(parent)
        depths.append(1 if parent is None else depths[parent] + 1)
    units = st.integers(0, size - 1)
    groups = draw(st.lists(units, min_size=1, max_size=2))  # the owning unit of each group customer
    group_refs = st.none() | st.integers(0, len(groups) - 1)
    # (unit, group index or None, phone index) per ordinary customer
    customers = draw(st.lists(st.tuples(units, group_refs, st.integers(0, len(PHONES) - 1)), min_size=1, max_size=8))
    count = len(groups) + len(customers)
    roles = draw(st.lists(st.sets(st.sampled_from(CODES)), min_size=1, max_size=3))
    users = st.integers(0, USERS - 1)
    return {
        "parents": parents,
        "groups": groups,
        "customers": customers,
        "roles": [sorted(codes) for codes in roles],
        "memberships": draw(st.lists(st.tuples(users, units, st.integers(0, len(roles) - 1)), max_size=5, unique=True)),
        "grants": draw(st.lists(st.tuples(users, st.integers(0, count - 1), st.sampled_from(GRANT_ACTIONS)),
                                max_size=4, unique=True)),
        "probe_unit": draw(units),
    }


# --- The reference ---------------------------------------------------------------------------------

@dataclass
class Reference:
    parent: dict  # unit index -> parent index or None
    owner: list  # customer index -> unit index
    group_of: list  # customer index -> group customer index or None
    phone: list  # customer index -> phone or ""
    roles: list
    memberships: set
    grants: set

    def ancestors(self, unit):
        while unit is not None:
            yield unit
            unit = self.parent[unit]

    def in_subtree(self, unit, top):
        return top in self.ancestors(unit)

    def can(self, user, action, customer):
        above = set(self.ancestors(self.owner[customer]))
        if any(u == user and m in above and f"customer.{action}" in self.roles[r] for u, m, r in self.memberships):
            return True
        if (user, customer, action) in self.grants:
            return True
        group = self.group_of[customer]
        return action in ("view", "export") and group is not None and self.can(user, action, group)

    def visible(self, user, action="view"):
        return {c for c in range(len(self.owner)) if self.can(user, action, c)}


def build(world, levels, users):
    units = []
    for parent in world["parents"]:
        depth = 1 if parent is None else units[parent].depth + 1
        data = {"code": f"K{next(_codes)}", "name": "unit", "level": levels[depth - 1]}
        if parent is None:
            units.append(OrgUnit.objects.add_root(data))
        else:
            units.append(OrgUnit.objects.add_child(units[parent], {**data, "parent": units[parent]}))
    customers, owner, group_of, phone = [], [], [], []
    for number, unit in enumerate(world["groups"]):
        customers.append(services.customer_create(actor="system", data={
            "name": f"集团{number}", "org_unit": units[unit], "is_group": True}))
        owner.append(unit), group_of.append(None), phone.append("")
    for number, (unit, group, phone_index) in enumerate(world["customers"]):
        data = {"name": f"客户{number}", "org_unit": units[unit], "phone": PHONES[phone_index]}
        if group is not None:
            data["group"] = customers[group]
        customers.append(services.customer_create(actor="system", data=data))
        owner.append(unit), group_of.append(group), phone.append(PHONES[phone_index])
    roles = [Role.objects.create(code=f"kr{next(_codes)}", name="role", permissions=codes) for codes in world["roles"]]
    Membership.objects.bulk_create(Membership(user=users[u], unit=units[m], role=roles[r]) for u, m, r in world["memberships"])
    for user, customer, action in world["grants"]:
        grant_add(actor="system", user=users[user], obj=customers[customer], action=action)
    reference = Reference(
        parent=dict(enumerate(world["parents"])), owner=owner, group_of=group_of, phone=phone, roles=world["roles"],
        memberships=set(world["memberships"]), grants=set(world["grants"]),
    )
    return units, customers, reference


# --- Checking -------------------------------------------------------------------------------------

def check_selectors(world, units, customers, users, reference):
    index = {c.pk: i for i, c in enumerate(customers)}
    ours = set(index)

    def got(queryset):
        return {index[pk] for pk in queryset.values_list("pk", flat=True) if pk in ours}

    cases = 0
    probe = world["probe_unit"]
    for u, user in enumerate(users):
        for action in ("view", "change", "export"):
            assert got(selectors.customers(user=user, action=action)) == reference.visible(u, action), (u, action)
        view = reference.visible(u)
        assert got(selectors.customer_list(user=user)) == view, u
        # The total counted part by part (units, grants, groups) is the plain count.
        unfiltered = selectors.customer_list(user=user)
        assert selectors.customer_count(unfiltered) == unfiltered.order_by().count(), u
        in_region = {c for c in view if reference.in_subtree(reference.owner[c], probe)}
        assert got(selectors.customer_list(user=user, params={"unit": units[probe].pk})) == in_region, u
        assert got(selectors.customer_list(user=user, params={"q": "客户"})) == {c for c in view if c >= len(world["groups"])}
        for number in PHONES:
            expected = {c for c in view if reference.phone[c] == number}
            assert got(selectors.customer_list(user=user, params={"phone": number})) == expected, (u, number)
            assert {index[c.pk] for c in selectors.caller_id(user=user, number=number) if c.pk in ours} == expected
        for c, customer in enumerate(customers):
            # By id: 404 unless the user may view it (as for a missing id), then 403 unless they
            # may also change it.
            if reference.can(u, "view", c) and reference.can(u, "change", c):
                selectors.customer_get(user=user, pk=customer.pk, action="change")
            else:
                error = PermissionDenied if reference.can(u, "view", c) else Http404
                with pytest.raises(error):
                    selectors.customer_get(user=user, pk=customer.pk, action="change")
        cases += 5 + 2 * len(PHONES) + len(customers)
    return cases


def check_api(alpha, customers, users, reference):
    """The same answers through HTTP, for one user per example (requests cost more)."""
    from tests.support.people import client_for

    index = {c.pk: i for i, c in enumerate(customers)}
    u = len(customers) % USERS
    client = client_for(alpha, users[u])
    view = reference.visible(u)
    response = client.get("/api/v1/customers/?page_size=200")
    mine = [role for m_user, _unit, role in reference.memberships if m_user == u]
    if not mine:
        # No membership, no customers module (a direct grant alone does not switch it on).
        assert response.status_code == 404
        return 1
    if not any("customer.view" in reference.roles[r] for r in mine) and not any(
            g_user == u and action == "view" for g_user, _c, action in reference.grants):
        assert response.status_code == 403  # may view no customer anywhere: refused before any id
        return 1
    listed = {index[row["id"]] for row in response.json()["results"] if row["id"] in index}
    assert listed == view, (u, listed, view)
    assert response.json()["count"] == len(response.json()["results"])  # the total matches the rows
    number = PHONES[0]
    cards = client.get("/api/v1/caller-id/", {"number": number}).json()["results"]
    assert {index[card["id"]] for card in cards if card["id"] in index} == {c for c in view if reference.phone[c] == number}
    for c, customer in enumerate(customers):
        # Detail for every customer; what hangs off it (the same lookup) for the first one.
        for tail in ("", "history/", "contacts/") if c == 0 else ("",):
            status = client.get(f"/api/v1/customers/{customer.pk}/{tail}").status_code
            assert status == (200 if c in view else 404), (u, c, tail, status)
    return 4 + len(customers)


@pytest.mark.django_db
def test_customer_reads_match_the_reference(in_alpha, django_capture_on_commit_callbacks):
    levels = list(make_levels(*(f"kdepth{d}" for d in range(1, MAX_DEPTH + 1))).values())
    users = [make_user(f"kp{u}") for u in range(USERS)]
    totals = {"examples": 0, "cases": 0, "visible": 0, "through_groups": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(world=worlds())
    # A group owned by one city with members in another: user 0 sees the members through the
    # group's city, user 1 through a grant on the group, user 2 (change only, no view) nothing.
    @example(world={"parents": [None, 0, 0], "groups": [1], "customers": [(2, 0, 0), (2, None, 0), (1, 0, 1)],
                    "roles": [["customer.view"], ["customer.change"]], "memberships": [(0, 1, 0), (2, 2, 1)],
                    "grants": [(1, 0, "view")], "probe_unit": 2})
    def run(world):
        with transaction.atomic():
            # Its on-commit hooks run as a real commit's would: scopes come from the cache.
            with django_capture_on_commit_callbacks(execute=True):
                units, customers, reference = build(world, levels, users)
            totals["cases"] += check_selectors(world, units, customers, users, reference)
            totals["cases"] += check_api(in_alpha, customers, users, reference)
            for u in range(USERS):
                seen = reference.visible(u)
                totals["visible"] += len(seen)
                totals["through_groups"] += sum(
                    1 for c in seen
                    if reference.group_of[c] is not None and not any(
                        m_user == u and m in set(reference.ancestors(reference.owner[c])) and "customer.view" in reference.roles[r]
                        for m_user, m, r in reference.memberships)
                    and (u, c, "view") not in reference.grants
                )
            totals["examples"] += 1
            transaction.set_rollback(True)

    run()
    print(totals)
    # Enough generated cases, with customers seen only through their group among them.
    assert totals["examples"] >= EXAMPLES // 2, totals
    assert totals["cases"] >= 1000 and totals["visible"] >= 40 and totals["through_groups"] >= 3, totals
