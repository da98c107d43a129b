"""The roll-up engine (reporting/engine.py, reporting/services.py) on small, hand-checked data:
each metric's definition, the subtree rule, groups, and the swap of a full recompute."""
import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection

from key_accounts import services as ka
from key_accounts.models import BillingAccount, Customer, Product
from org_hierarchy.models import OrgUnit
from reporting import engine, services
from reporting.models import GroupMonth, SubtreeMonth, SubtreeProductMonth, UnitMonth, UnitProductMonth

from .conftest import bill, new_customer, snapshot, subscribe, this_month

CustomerEvent = apps.get_model("key_accounts", "CustomerEvent")


def own(unit, month, **dims):
    rows = UnitMonth.objects.filter(unit_id=unit.pk, month=month, **dims)
    return {f: sum(getattr(r, f) for r in rows) for f in engine.MEASURES}


def backdate(customer, months):
    """Pretend ``customer`` was created ``months`` ago (history included)."""
    moment = datetime.datetime.combine(this_month(-months) + datetime.timedelta(days=9), datetime.time(12))
    from django.utils import timezone

    moment = timezone.make_aware(moment)
    Customer.objects.filter(pk=customer.pk).update(created_at=moment)
    CustomerEvent.objects.filter(pgh_obj_id=customer.pk).update(pgh_created_at=moment)


def churn_events_at(customer, months):
    from django.utils import timezone

    moment = timezone.make_aware(datetime.datetime.combine(this_month(-months) + datetime.timedelta(days=19), datetime.time(8)))
    CustomerEvent.objects.filter(pgh_obj_id=customer.pk, status="churned").update(pgh_created_at=moment)


def test_stock_counts_a_customer_from_its_creation_and_moves_it_to_churned_in_its_churn_month(tree, admin):
    customer = new_customer(admin, tree.c11, "某某科技", status="active", grade="A", industry="I")
    backdate(customer, 3)
    ka.customer_update(actor=admin, customer=customer, data={"status": "churned"})
    churn_events_at(customer, 1)
    services.recompute()

    before, created, after, churned, now = (own(tree.c11, this_month(m)) for m in (-4, -3, -2, -1, 0))
    assert before["customers"] == 0
    assert (created["customers"], created["active"], created["churned"], created["new_customers"]) == (1, 1, 0, 1)
    assert (after["customers"], after["active"], after["new_customers"]) == (1, 1, 0)
    assert (churned["customers"], churned["active"], churned["churned"], churned["lost_customers"]) == (1, 0, 1, 1)
    assert (now["churned"], now["lost_customers"]) == (1, 0)
    assert created["enterprises"] == 1 and set(UnitMonth.objects.values_list("grade", "industry")) == {("A", "I")}

    # Back to active: it never churned as far as the figures go.
    ka.customer_update(actor=admin, customer=customer, data={"status": "active"})
    services.recompute()
    assert [own(tree.c11, this_month(m))["active"] for m in (-3, -2, -1, 0)] == [1, 1, 1, 1]
    assert sum(own(tree.c11, this_month(m))["churned"] for m in (-3, -2, -1, 0)) == 0


def test_a_customer_churned_again_counts_from_the_start_of_its_last_churned_run(tree, admin):
    customer = new_customer(admin, tree.c11, "反复流失", status="active")
    backdate(customer, 5)
    ka.customer_update(actor=admin, customer=customer, data={"status": "churned"})
    churn_events_at(customer, 4)
    ka.customer_update(actor=admin, customer=customer, data={"status": "active"})
    CustomerEvent.objects.filter(pgh_obj_id=customer.pk, status="active", pgh_label="update").update(
        pgh_created_at=CustomerEvent.objects.get(pgh_obj_id=customer.pk, status="churned").pgh_created_at
        + datetime.timedelta(days=20)
    )
    ka.customer_update(actor=admin, customer=customer, data={"status": "churned", "name": "反复流失2"})
    ka.customer_update(actor=admin, customer=customer, data={"name": "反复流失3"})  # still churned: same run
    services.recompute()
    assert [own(tree.c11, this_month(m))["churned"] for m in (-4, -3, -1, 0)] == [0, 0, 0, 1]
    assert own(tree.c11, this_month())["lost_customers"] == 1


def test_billing_figures_count_a_customer_with_two_accounts_once(tree, admin):
    customer = new_customer(admin, tree.c11, "两个账户", status="active")
    first = ka.billing_account_save(actor=admin, customer=customer, data={"number": "BA-1"})
    second = ka.billing_account_save(actor=admin, customer=customer, data={"number": "BA-2"})
    month = this_month()
    bill(customer, month, "60.00", arrears="5.00", discount="1.50", account=first)
    bill(customer, month, "40.00", arrears="0", discount="0.50", account=second)
    bill(customer, this_month(-30), "999")  # outside the window: not summarised
    services.recompute()
    figures = own(tree.c11, month)
    assert (figures["billed_customers"], figures["revenue"], figures["arrears"], figures["discount"]) == (
        1, Decimal("100.00"), Decimal("5.00"), Decimal("2.00"))
    assert not UnitMonth.objects.filter(month__lt=engine.window()[0]).exists()


def test_product_holders_count_a_customer_once_over_overlapping_subscriptions_and_not_in_gaps(tree, admin, product):
    customer = new_customer(admin, tree.c11, "产品客户")
    m = this_month
    subscribe(customer, product, m(-5), end=m(-4) + datetime.timedelta(days=10), quantity=3, fee="30")
    subscribe(customer, product, m(-4) + datetime.timedelta(days=12), end=m(-3) + datetime.timedelta(days=1), fee="5")
    subscribe(customer, product, m(-1) + datetime.timedelta(days=27), fee="7")
    services.recompute()
    rows = dict(((r.month, (r.holders, r.subscriptions, r.quantity, r.monthly_fee))
                 for r in UnitProductMonth.objects.filter(unit_id=tree.c11.pk)))
    assert rows == {
        m(-5): (1, 1, 3, Decimal("30.00")),
        m(-4): (1, 2, 4, Decimal("35.00")),
        m(-3): (1, 1, 1, Decimal("5.00")),
        m(-1): (1, 1, 1, Decimal("7.00")),
        m(0): (1, 1, 1, Decimal("7.00")),
    }
    # The main table counts subscription rows too (the ARPU denominator).
    assert [own(tree.c11, m(k))["subscriptions"] for k in (-5, -4, -3, -2, -1, 0)] == [1, 2, 1, 0, 1, 1]


def test_group_figures_credit_each_member_to_its_serving_unit_and_add_the_group_row(billed, archive, tree):
    services.recompute()
    month = this_month()
    groups = {(r.unit_id, r.group_id): r for r in GroupMonth.objects.filter(month=month)}
    assert set(groups) == {(tree.p2.pk, archive.group.pk), (tree.c11.pk, archive.group.pk), (tree.c21.pk, archive.group.pk)}
    # billed: customer i of archive.all() has revenue 100 + 10 i (group 3, member11 4, member21 5)
    assert groups[(tree.c11.pk, archive.group.pk)].revenue == Decimal("140.00")
    assert groups[(tree.c21.pk, archive.group.pk)].revenue == Decimal("150.00")
    assert groups[(tree.p2.pk, archive.group.pk)].revenue == Decimal("130.00")
    assert sum(g.customers for g in groups.values()) == 3
    # In the unit figures the member in C11 counts for P1, not for the group's province P2.
    p1 = SubtreeMonth.objects.filter(unit_id=tree.p1.pk, month=month)
    assert sum(r.revenue for r in p1) == Decimal("100.00") + Decimal("110.00") + Decimal("140.00")


def test_every_parent_figure_is_its_own_plus_its_childrens_for_every_unit_and_metric(billed, tree):
    services.recompute()
    key = ("month", "grade", "industry")
    for family, dims in ((engine.MAIN, ("grade", "industry")), (engine.PRODUCTS, ("product_id",))):
        measures = family.measures
        for unit in tree.all():
            def rows(model, unit_ids):
                totals = {}
                for row in model.objects.filter(unit_id__in=unit_ids).values("month", *dims, *measures):
                    k = tuple(row[d] for d in ("month", *dims))
                    acc = totals.setdefault(k, dict.fromkeys(measures, 0))
                    for m in measures:
                        acc[m] += row[m]
                return totals

            def subtree(pk):  # a leaf keeps no subtree rows: its subtree is its own rows
                has_children = OrgUnit.objects.filter(parent_id=pk).exists()
                return rows(family.subtree if has_children else family.own, [pk])

            expected = rows(family.own, [unit.pk])
            for child in OrgUnit.objects.filter(parent=unit).values_list("pk", flat=True):
                for k, values in subtree(child).items():
                    acc = expected.setdefault(k, dict.fromkeys(measures, 0))
                    for m in measures:
                        acc[m] += values[m]
            assert subtree(unit.pk) == expected, (family.name, unit.code)
            if unit.numchild == 0:
                assert not family.subtree.objects.filter(unit_id=unit.pk).exists()
    assert key  # the checks above cover every metric column of both families
    hq = SubtreeMonth.objects.filter(unit_id=tree.hq.pk, month=this_month())
    assert sum(r.revenue for r in hq) == sum(100 + 10 * i for i in range(6))


def test_refreshing_everything_gives_the_full_recompute(billed, tree):
    services.recompute()
    full = snapshot()
    with connection.cursor() as cursor:
        for model in (UnitMonth, SubtreeMonth, UnitProductMonth, SubtreeProductMonth, GroupMonth):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
    services.refresh([u.pk for u in tree.all()])
    assert snapshot() == full
    assert full["UnitMonth"] and full["SubtreeProductMonth"] and full["GroupMonth"]


INDEX_NAMES = """
SELECT c.relname, i.relname, coalesce(k.conname, '') FROM pg_index x
  JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
  LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid
 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'reporting%%' ORDER BY 1, 2
"""


def test_a_full_recompute_swaps_in_tables_with_the_same_indexes_and_constraint_names(billed):
    with connection.cursor() as cursor:
        cursor.execute(INDEX_NAMES)
        before = cursor.fetchall()
        services.recompute()
        services.recompute()  # twice: the second swaps tables the first created
        cursor.execute(INDEX_NAMES)
        assert cursor.fetchall() == before
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'reporting%%__next'")
        assert cursor.fetchone() == (0,)
    assert len(before) == 6  # five primary keys and the group index
    assert UnitMonth.objects.exists()


def test_a_refresh_ignores_months_outside_the_window(tree, admin):
    customer = new_customer(admin, tree.c11, "窗口外")
    bill(customer, this_month(-40), "10")
    assert services.refresh([tree.c11.pk], [this_month(-40)]) == 0
    assert not UnitMonth.objects.exists()


@pytest.mark.parametrize("deleted", ["customer", "billing"])
def test_deleting_data_removes_its_rows_on_refresh(tree, admin, deleted):
    customer = new_customer(admin, tree.c11, "将删除")
    record = bill(customer, this_month(), "10")
    services.recompute()
    assert UnitMonth.objects.filter(unit_id=tree.c11.pk).exists()
    if deleted == "customer":
        ka.customer_delete(actor=admin, customer=customer)
        assert not BillingAccount.objects.filter(customer_id=customer.pk).exists()
    else:
        record.delete()
    services.refresh([tree.c11.pk])
    remaining = UnitMonth.objects.filter(unit_id=tree.c11.pk, month=this_month())
    assert sum(r.revenue for r in remaining) == 0
    assert not SubtreeMonth.objects.filter(unit_id=tree.hq.pk, billed_customers__gt=0).exists()
    assert Product.objects.count() >= 0
