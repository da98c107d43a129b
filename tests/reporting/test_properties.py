"""Property-based: after random changes through the services (customers, subscriptions, billing
records, unit moves and merges), the incrementally refreshed roll-ups equal a full recompute,
and the published figures (customers, revenue, ARPU, ARPA) equal an independent computation in
plain Python from the raw rows and the tree's parent links.

Every example builds on the small tree (HQ -> P1 (C11, C12), P2 (C21)) inside a savepoint that
is rolled back; the changes' on-commit hooks run as a commit would run them, and the dirty keys
are drained synchronously, as the rollup_refresh task does.
"""
import datetime
import itertools
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings, strategies as st

from key_accounts import services as ka
from key_accounts.models import BillingRecord, Customer, Product, Subscription
from org_hierarchy import services as org_services
from org_hierarchy.models import OrgUnit
from reporting import selectors, services

from .conftest import bill, snapshot, this_month

EXAMPLES = 60
CENT = Decimal("0.01")
_names = itertools.count()
UNITS = ("hq", "p1", "p2", "c11", "c12", "c21")
CustomerEvent = apps.get_model("key_accounts", "CustomerEvent")

units = st.sampled_from(UNITS)
customers = st.integers(0, 30)  # an index into the customers made so far (modulo their number)
offsets = st.integers(-4, 0)  # months back from this one
money = st.integers(0, 500).map(lambda v: Decimal(v) + Decimal("0.25"))

initial = st.lists(
    st.tuples(units, st.sampled_from(["A", "B", "C"]), st.sampled_from(["C", "I", ""]),
              st.sampled_from(["prospect", "active", "abnormal", "churned"]), st.integers(0, 6)),
    min_size=1, max_size=6,
)
operations = st.one_of(
    st.tuples(st.just("create"), units, st.sampled_from(["A", "strategic"]), st.sampled_from(["active", "churned"])),
    st.tuples(st.just("status"), customers, st.sampled_from(["active", "abnormal", "churned", "prospect"])),
    st.tuples(st.just("regrade"), customers, st.sampled_from(["A", "B", "C"]), st.sampled_from(["C", "I", "P"])),
    st.tuples(st.just("assign"), customers, units),
    st.tuples(st.just("group"), customers, customers),
    st.tuples(st.just("delete"), customers),
    st.tuples(st.just("subscribe"), customers, st.integers(0, 1), offsets, st.one_of(st.none(), offsets)),
    st.tuples(st.just("unsubscribe"), customers),
    st.tuples(st.just("bill"), customers, offsets, money, money),
    st.tuples(st.just("unbill"), customers),
    st.tuples(st.just("move"), st.sampled_from(["c11", "c12", "c21"]), st.sampled_from(["p1", "p2"])),
    st.tuples(st.just("merge"), units, units),
)


def backdate(customer, months):
    moment = timezone.make_aware(datetime.datetime.combine(this_month(-months) + datetime.timedelta(days=3), datetime.time(10)))
    Customer.objects.filter(pk=customer.pk).update(created_at=moment)
    CustomerEvent.objects.filter(pgh_obj_id=customer.pk).update(pgh_created_at=moment)


def pick(made, index):
    alive = [c for c in made if Customer.objects.filter(pk=c.pk).exists()]
    return alive[index % len(alive)] if alive else None


def apply(op, tree, made, products):
    """Run one change through the services (billing through the ORM, as a feed would); a change
    the services refuse changes nothing. Returns True when it was applied."""
    kind, *args = op
    try:
        with transaction.atomic():
            if kind == "create":
                unit, grade, status = args
                made.append(ka.customer_create(actor="system", data={
                    "name": f"新客户{next(_names)}", "org_unit": getattr(tree, unit), "grade": grade, "status": status}))
                return True
            if kind in ("move", "merge"):
                a, b = (getattr(tree, name) for name in args)
                a.refresh_from_db()
                b.refresh_from_db()
                if kind == "move":
                    org_services.unit_move(actor="system", unit=a, new_parent=b)
                else:
                    org_services.unit_merge(actor="system", source=a, survivor=b)
                return True
            customer = pick(made, args[0])
            if customer is None:
                return False
            customer.refresh_from_db()
            if kind == "status":
                ka.customer_update(actor="system", customer=customer, data={"status": args[1]})
            elif kind == "regrade":
                ka.customer_update(actor="system", customer=customer, data={"grade": args[1], "industry": args[2]})
            elif kind == "assign":
                ka.customer_update(actor="system", customer=customer, data={"org_unit": getattr(tree, args[1])})
            elif kind == "group":
                group = pick(made, args[1])
                if group.pk == customer.pk or customer.is_group:
                    return False
                if not group.is_group:
                    if Customer.objects.filter(group=group).exists() or group.group_id:
                        return False
                    ka.customer_update(actor="system", customer=group, data={"is_group": True})
                ka.customer_update(actor="system", customer=customer, data={"group": group})
            elif kind == "delete":
                if customer.is_group and Customer.objects.filter(group=customer).exists():
                    return False
                ka.customer_delete(actor="system", customer=customer)
            elif kind == "subscribe":
                _, product, start, end = args
                start_date = this_month(start) + datetime.timedelta(days=4)
                end_date = None if end is None else max(this_month(end) + datetime.timedelta(days=20), start_date)
                ka.subscription_save(actor="system", customer=customer, data={
                    "product": products[product], "start_date": start_date, "end_date": end_date})
            elif kind == "unsubscribe":
                subscription = Subscription.objects.filter(customer=customer).first()
                if subscription is None:
                    return False
                ka.subscription_delete(actor="system", subscription=subscription)
            elif kind == "bill":
                _, month, revenue, arrears = args
                bill(customer, this_month(month), revenue, arrears=arrears, discount=Decimal("1.00"))
            elif kind == "unbill":
                record = BillingRecord.objects.filter(customer=customer).order_by("month").last()
                if record is None:
                    return False
                record.delete()
            return True
    except (ValidationError, PermissionDenied):
        return False


# --- The reference: plain Python over the raw rows ----------------------------------------------

def reference(unit_pk, month):
    parent = dict(OrgUnit.objects.values_list("pk", "parent_id"))

    def under(pk):
        while pk is not None:
            if pk == unit_pk:
                return True
            pk = parent[pk]
        return False

    mine = {pk for pk, unit in Customer.objects.values_list("pk", "org_unit_id") if under(unit)}
    end = engine_end(month)
    records = [r for r in BillingRecord.objects.filter(month=month) if r.customer_id in mine]
    revenue = sum((r.revenue for r in records), Decimal(0))
    billed = len({r.customer_id for r in records})
    subscriptions = sum(
        1 for s in Subscription.objects.filter(customer_id__in=mine)
        if s.start_date < end and (s.end_date is None or s.end_date >= month)
    )
    created = sum(1 for c in Customer.objects.filter(pk__in=mine) if timezone.localtime(c.created_at).date() < end)

    def ratio(n, d):
        return None if not d else (n / Decimal(d)).quantize(CENT, ROUND_HALF_UP)

    return {"customers": created, "revenue": revenue.quantize(CENT), "subscriptions": subscriptions,
            "billed_customers": billed, "arpu": ratio(revenue, subscriptions), "arpa": ratio(revenue, billed)}


def engine_end(month):
    from reporting import engine

    return engine.add_months(month, 1)


@pytest.mark.django_db
def test_incremental_roll_ups_equal_a_full_recompute_and_an_independent_computation(
    tree, admin, committing, django_capture_on_commit_callbacks,
):
    products = [Product.objects.create(code=f"prop-{i}", name=f"P{i}", category="mobile") for i in range(2)]
    totals = {"examples": 0, "applied": 0, "compared": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(start=initial, ops=st.lists(operations, min_size=1, max_size=8))
    def run(start, ops):
        with transaction.atomic():
            for unit in tree.all():
                unit.refresh_from_db()
            made = []
            with django_capture_on_commit_callbacks(execute=False):  # the baseline: a full recompute
                for unit, grade, industry, status, age in start:
                    customer = ka.customer_create(actor="system", data={
                        "name": f"客户{next(_names)}", "org_unit": getattr(tree, unit), "grade": grade,
                        "industry": industry, "status": status})
                    backdate(customer, age)
                    made.append(customer)
                    bill(customer, this_month(-1), Decimal(age * 10 + 5))
            services.recompute()
            with committing():
                for op in ops:
                    totals["applied"] += apply(op, tree, made, products)
            incremental = snapshot()
            services.recompute()
            assert snapshot() == incremental

            for unit in OrgUnit.objects.all():
                for month in (this_month(-1), this_month()):
                    figures = selectors.unit_figures(user=admin, unit=unit, filters=selectors.Filters(month, month))
                    got = {key: figures["subtree"][key] for key in ("customers", "revenue", "subscriptions",
                                                                     "billed_customers", "arpu", "arpa")}
                    assert got == reference(unit.pk, month), (unit.code, month)
                    totals["compared"] += 1
            totals["examples"] += 1
            transaction.set_rollback(True)

    run()
    print(totals)
    assert totals["examples"] >= EXAMPLES // 2 and totals["applied"] >= EXAMPLES, totals
