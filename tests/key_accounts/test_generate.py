"""bench.generate: deterministic, valid, recorded in history, and confined to its tenant."""
import datetime as dt
import io
from collections import Counter

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.models import F
from django_tenants.utils import schema_context

from bench.generate import TABLES, generate
from kam.demo import load_demo_data
from key_accounts import phones, selectors, services
from key_accounts.models import BillingRecord, Contact, Customer, PhoneNumber
from key_accounts.validators import validate_credit_code
from org_hierarchy.importing import import_org_tree
from org_hierarchy.models import OrgUnit
from permissions.models import Membership
from permissions.selectors import can
from tests.permissions.conftest import Tree

UNTIL = dt.date(2025, 6, 1)
GB_TREE = """code,name,parent_code,level,note
HQ,集团总部,,hq,
11,北京市,HQ,province,
1101,北京市,11,city,
44,广东省,HQ,province,
4401,广州市,44,city,
4403,深圳市,44,city,
4406,佛山市,44,city,
43,湖南省,HQ,province,
4301,长沙市,43,city,
4331,湘西土家族苗族自治州,43,city,
"""
CHECKED_TABLES = [table for table, _columns in TABLES.values()] + [
    "auth_user", "permissions_membership", "key_accounts_product", "key_accounts_gradingrule"]


def load_tree(text=GB_TREE):
    report = import_org_tree(actor="pytest", file=io.BytesIO(text.encode()), create_levels=True)
    assert report.ok, report.errors
    return {unit.code: unit for unit in OrgUnit.objects.all()}


@pytest.fixture
def gb_tree(in_alpha):
    return load_tree()


def make(tenant, customers=300, seed=7, **kwargs):
    return generate(tenant=tenant, customers=customers, seed=seed, until=UNTIL, **kwargs)


def checksums(schema, tables=CHECKED_TABLES):
    """md5 of every row of each table, in id order."""
    sums = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t.id), \'\')) '
                           f'FROM "{schema}".{table} t')
            sums[table] = cursor.fetchone()
    return sums


def generated_then_rolled_back(tenant, **kwargs):
    with transaction.atomic():
        make(tenant, **kwargs)
        sums = checksums(tenant.schema_name)
        transaction.set_rollback(True)
    return sums


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(alpha, gb_tree):
    first = generated_then_rolled_back(alpha.tenant, seed=7)
    assert Customer.objects.count() == 0  # rolled back
    assert first["key_accounts_customer"][0] == 300 and first["key_accounts_billingrecord"][0] > 300
    assert generated_then_rolled_back(alpha.tenant, seed=7) == first
    other = generated_then_rolled_back(alpha.tenant, seed=8)
    assert all(other[table] != first[table] for table, _columns in TABLES.values())


def test_generated_rows_are_valid(alpha, gb_tree):
    report = make(alpha.tenant, customers=400)
    assert report.rows["customer"] == Customer.objects.count() == 400
    customers = list(Customer.objects.all())

    assert {c.kind for c in customers} == {"enterprise", "government", "institution", "individual"}
    assert {c.status for c in customers} == {"prospect", "active", "abnormal", "churned"}
    assert len({c.grade for c in customers}) >= 3
    for customer in customers:
        if customer.kind == "individual":
            assert customer.credit_code is None
        else:
            assert validate_credit_code(customer.credit_code) == customer.credit_code
            if customer.org_unit.code.isdigit():
                assert customer.credit_code[2:8] == customer.org_unit.code.ljust(6, "0")  # the owner's division
        customer.full_clean()  # every model rule, choices and lengths included
    assert Contact.objects.count() / 400 > 2

    # The phone index is exactly what key_accounts.services.reindex_phones would write.
    expected = [(c.id, None, digits) for c in customers for digits in phones.digits_of(c.phone)]
    expected += [(c.customer_id, c.id, digits) for c in Contact.objects.all() for digits in phones.digits_of(c.phones)]
    stored = list(PhoneNumber.objects.values_list("customer_id", "contact_id", "digits", "reversed_digits"))
    assert all(reversed_digits == digits[::-1] for _c, _k, digits, reversed_digits in stored)
    assert Counter((c, k, d) for c, k, d, _r in stored) == Counter(expected)

    months = set(BillingRecord.objects.values_list("month", flat=True))
    assert all(month.day == 1 for month in months)
    assert max(months) == UNTIL and min(months) == dt.date(2024, 7, 1) and len(months) == 12
    assert not BillingRecord.objects.exclude(customer_id=F("account__customer_id")).exists()

    units = {unit.id: unit for unit in OrgUnit.objects.filter(is_active=True)}
    assert all(c.org_unit_id in units for c in customers)
    members = [c for c in customers if c.group_id]
    groups = {c.id: c for c in customers if c.is_group}
    assert groups and members and all(m.group_id in groups for m in members)
    assert any(len({units[m.org_unit_id].path[:8] for m in members if m.group_id == g}) > 1 for g in groups)

    # Every managed customer at a city is served by an account manager of that city, who may change it.
    managed = [c for c in customers if c.account_manager_id and units[c.org_unit_id].is_leaf()]
    assert len(managed) > 300
    for customer in managed[:50]:
        assert Membership.objects.filter(user_id=customer.account_manager_id, unit_id=customer.org_unit_id,
                                         role__code="account_manager").exists()
        assert can(customer.account_manager, "customer.change", customer)


def expected_view(unit):
    """Customers owned in ``unit``'s subtree and the members of the groups among them."""
    own = set(Customer.objects.filter(org_unit__path__startswith=unit.path).values_list("id", flat=True))
    return own | set(Customer.objects.filter(group_id__in=own).values_list("id", flat=True))


def test_people_get_scopes_that_match_the_tree(alpha, gb_tree):
    make(alpha.tenant, customers=200)
    for code, role in (("4401", "account_manager"), ("44", "provincial_manager"), ("43", "provincial_manager")):
        user = Membership.objects.filter(role__code=role, unit=gb_tree[code]).first().user
        seen = set(selectors.customers(user=user).values_list("id", flat=True))
        assert seen and seen == expected_view(gb_tree[code])
    analyst = Membership.objects.filter(role__code="hq_analyst", unit=gb_tree["HQ"]).first().user
    assert selectors.customers(user=analyst).count() == 200


def test_the_load_is_recorded_in_history_as_the_generator(alpha, gb_tree):
    make(alpha.tenant, customers=120)
    CustomerEvent = apps.get_model("key_accounts", "CustomerEvent")
    events = CustomerEvent.objects.select_related("pgh_context")
    assert events.filter(pgh_label="insert").count() == 120
    contexts = {(e.pgh_context.metadata["actor"], e.pgh_context.metadata["via"]) for e in events}
    assert contexts == {("generator", "generate")}
    ContactEvent = apps.get_model("key_accounts", "ContactEvent")
    assert ContactEvent.objects.count() == Contact.objects.count()


def test_the_load_queues_the_roll_up_recompute(alpha, gb_tree, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        make(alpha.tenant, customers=30)
    assert any("recompute_later" in callback.__qualname__ for callback in callbacks)
    with django_capture_on_commit_callbacks() as callbacks:
        make(alpha.tenant, customers=30, seed=2, rollups=False)
    assert not any("recompute_later" in callback.__qualname__ for callback in callbacks)


def schema_objects(schema):
    """Index and constraint definitions of the archive's tables and their history tables."""
    with schema_context(schema), connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename LIKE 'key_accounts_%%'"
            " UNION ALL SELECT relname, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_class ON pg_class.oid = conrelid WHERE connamespace = %s::regnamespace ORDER BY 1, 2, 3",
            [schema, schema])
        return cursor.fetchall()


def test_an_initial_load_puts_back_every_index_and_foreign_key(alpha, gb_tree):
    before = schema_objects(alpha.schema_name)
    assert any("FOREIGN KEY" in definition for _t, _n, definition in before)
    make(alpha.tenant, customers=50)
    assert schema_objects(alpha.schema_name) == before


def test_a_second_load_appends_and_the_sequences_move_on(alpha, gb_tree, admin):
    make(alpha.tenant, customers=100)
    users = Membership.objects.count()
    make(alpha.tenant, customers=60, seed=9)
    assert Customer.objects.count() == 160
    codes = list(Customer.objects.exclude(credit_code=None).values_list("credit_code", flat=True))
    assert len(codes) > 100 and len(set(codes)) == len(codes)
    assert Membership.objects.count() == users  # the same people, found by username
    newest = Customer.objects.order_by("-id").first()
    created = services.customer_create(actor=admin, data={"name": "新客户有限公司", "org_unit": gb_tree["4401"]})
    assert created.pk > newest.pk
    contact = services.contact_save(actor=admin, customer=created, data={"name": "王伟", "phones": "13800138000"})
    assert contact.pk > Contact.objects.exclude(pk=contact.pk).order_by("-id").first().pk


def test_it_writes_only_into_the_target_tenant(alpha, beta, db):
    with schema_context(beta.schema_name):
        load_tree()
        beta_before = checksums(beta.schema_name)
        beta_objects = schema_objects(beta.schema_name)
    with schema_context(alpha.schema_name):
        load_tree()
    public_before = checksums("public", ["auth_user"])
    make(alpha.tenant, customers=80)
    assert connection.schema_name == "public"  # the caller's schema is back
    assert checksums(beta.schema_name) == beta_before
    assert schema_objects(beta.schema_name) == beta_objects
    assert checksums("public", ["auth_user"]) == public_before
    assert checksums(alpha.schema_name)["key_accounts_customer"][0] == 80


def test_a_tree_without_division_codes_still_gets_valid_rows(in_alpha):
    tree = Tree()  # HQ -> P1 (C11, C12), P2 (C21)
    make(in_alpha.tenant, customers=80)
    owners = set(Customer.objects.values_list("org_unit_id", flat=True))
    assert owners <= {unit.id for unit in tree.all()} and tree.c11.id in owners
    for code in Customer.objects.exclude(credit_code=None).values_list("credit_code", flat=True):
        validate_credit_code(code)


def test_a_tenant_without_a_tree_is_refused(in_alpha):
    with pytest.raises(ValueError, match="org tree"):
        make(in_alpha.tenant, customers=10)
    assert Customer.objects.count() == 0


def test_the_demo_tenant_gets_generated_data_once(beta, db, capsys):
    creds = {}
    assert load_demo_data(beta.tenant, creds, customers=40) is None  # no tree yet: nothing, and nothing remembered
    assert "demo_data" not in creds
    with schema_context(beta.schema_name):
        load_tree()
    report = load_demo_data(beta.tenant, creds, customers=40)
    assert report.rows["customer"] == 40 and creds["demo_data"] == {"customers": 40, "seed": 1}
    assert "40 customers generated" in capsys.readouterr().out
    assert load_demo_data(beta.tenant, creds, customers=40) is None  # the second run
    assert load_demo_data(beta.tenant, {}, customers=40) is None  # var/ lost, but the archive has customers
    with schema_context(beta.schema_name):
        assert Customer.objects.count() == 40
