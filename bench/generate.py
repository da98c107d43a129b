"""Realistic key-account data at any scale, for the demo and the benchmarks (issue #4, item 9).

    .venv/bin/python -m bench.generate --tenant SLUG [--customers N] [--seed S] [--months 12] [--until YYYY-MM]

Fills a tenant's archive over its existing org tree: customers (enterprises, government bodies,
public institutions, individuals; group customers with branches in several provinces), their
contacts and the phone search index, subscriptions to a catalogue of telecom products, billing
accounts with ``--months`` months of billing records, interactions on every channel, and the
people who serve them: two HQ analysts, a provincial manager per province and account managers at
every leaf unit (memberships with the built-in roles), so customers have managers and scopes.

The same seed, size, months and last month (``--until``, by default the month before this
one) give the same rows, ids included, on a tenant that starts alike. Rows are written with COPY
in the tenant's schema, with ids assigned here, in one transaction: the tenant has all of the
data or none of it. The load is an initial load and is recorded as such: it runs inside
``kam.history.acting(actor="generator", via="generate")``, so every history row the triggers
write names it (see bench/README.md for what that costs at full scale). Sequences are moved past
the new ids and the tables analysed at the end. Prints figures as JSON lines on stdout.
"""
import argparse
import datetime as dt
import os
import random
import sys
import time
from dataclasses import dataclass, field

from . import _data as D
from ._synth import (
    ACCOUNT_COLUMNS, CONTACT_COLUMNS, CUSTOMER_COLUMNS, INTERACTION_COLUMNS, PHONE_COLUMNS, RECORD_COLUMNS,
    SUBSCRIPTION_COLUMNS, Synth,
)
from ._world import Places, plan_people

DEFAULT_CUSTOMERS = 3_000  # the demo's
FULL_CUSTOMERS = 1_000_000
BATCH = 10_000  # customers per round of COPY statements: bounds memory and each statement's trigger work
PER_MANAGER = 250  # expected customers per account manager
ACTOR = "generator"

# Where each kind of row goes, in the order a batch is written (referenced rows first).
TABLES = {
    "customer": ("key_accounts_customer", CUSTOMER_COLUMNS),
    "contact": ("key_accounts_contact", CONTACT_COLUMNS),
    "phone": ("key_accounts_phonenumber", PHONE_COLUMNS),
    "account": ("key_accounts_billingaccount", ACCOUNT_COLUMNS),
    "subscription": ("key_accounts_subscription", SUBSCRIPTION_COLUMNS),
    "record": ("key_accounts_billingrecord", RECORD_COLUMNS),
    "interaction": ("key_accounts_interaction", INTERACTION_COLUMNS),
}
PEOPLE_TABLES = {"user": "auth_user", "membership": "permissions_membership"}
USER_COLUMNS = ("id", "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff",
                "is_active", "date_joined")
MEMBERSHIP_COLUMNS = ("id", "user_id", "unit_id", "role_id", "created_at")


@dataclass
class Report:
    schema: str
    slug: str
    seed: int
    customers: int
    until: dt.date
    months: int
    history: bool
    rows: dict = field(default_factory=dict)
    seconds: float = 0.0
    load_seconds: float = 0.0
    analyze_seconds: float = 0.0

    @property
    def total_rows(self):
        return sum(self.rows.values())

    @property
    def rows_per_s(self):
        return self.total_rows / self.seconds if self.seconds else 0.0


class Ids:
    """The next id of each table, counted up from the largest one there before the load."""

    def __init__(self, last):
        self.last = dict(last)
        self.first = {name: value + 1 for name, value in last.items()}

    def next(self, name):
        self.last[name] += 1
        return self.last[name]

    def count(self, name):
        return self.last[name] - self.first[name] + 1


def last_month(today=None):
    """The first day of the month before ``today``'s: the latest complete billing month."""
    today = today or dt.date.today()
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def resolve(tenant):
    """A Tenant from a Tenant or a slug."""
    if isinstance(tenant, str):
        from tenants.services import tenant_get

        return tenant_get(tenant)
    return tenant


def generate(*, tenant, customers=DEFAULT_CUSTOMERS, seed=1, months=12, until=None, history=True, batch=BATCH,
             analyze=True, rollups=True, log=None):
    """Generate ``customers`` customers and everything around them into ``tenant`` (a Tenant or a
    slug). One transaction; returns a Report. ``history=False`` skips the history triggers and is
    only for measuring what history costs (the load is then missing from the change log).
    ``rollups`` queues the tenant's roll-up recompute for when the load commits (a bulk load
    sends no signals; reporting.services.recompute_later), for a Celery worker to run."""
    from django_tenants.utils import schema_context

    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    tenant = resolve(tenant)
    schema = tenant.schema_name
    until = (until or last_month()).replace(day=1)
    report = Report(schema=schema, slug=tenant.slug, seed=seed, customers=customers, until=until, months=months, history=history)
    log = log or (lambda message: None)
    started = time.perf_counter()
    with schema_context(schema):
        _load(report, batch=batch, log=log, rollups=rollups)
        report.load_seconds = time.perf_counter() - started
        if analyze:
            analyze_started = time.perf_counter()
            _analyze(schema)
            report.analyze_seconds = time.perf_counter() - analyze_started
    report.seconds = time.perf_counter() - started
    return report


def _load(report, *, batch, log, rollups):
    from django.db import connection, transaction

    from kam import history
    from permissions.scope import invalidate_scopes

    schema = report.schema
    tables = [table for table, _columns in TABLES.values()] + list(PEOPLE_TABLES.values())
    with transaction.atomic(), connection.cursor() as cursor:
        # Foreign keys are checked at the end of each COPY instead of piling up until commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Readers go on; other writers wait, so the ids handed out here stay free.
        cursor.execute(f"LOCK TABLE {', '.join(f'{q(schema)}.{t}' for t in tables)} IN EXCLUSIVE MODE")
        with history.acting(ACTOR, via="generate", seed=report.seed, customers=report.customers):
            history.attach(cursor)
            if not report.history:
                _ignore_history(cursor, schema)
            restore = _defer_indexes(cursor, schema) if _is_empty(cursor, schema) else []
            cursor.execute("SELECT id, code, name, path, depth, parent_id, numchild FROM org_hierarchy_orgunit "
                           "WHERE is_active ORDER BY path")
            places = Places(cursor.fetchall())
            rng = random.Random(report.seed)
            people = _people(cursor, schema, places, report, rng)
            products = _products(cursor, schema)
            grading = _grading(cursor, schema)
            ids = Ids({name: _max_id(cursor, schema, table) for name, (table, _c) in TABLES.items()})
            synth = Synth(rng, places, people, products, grading, report.until, report.months, ids)
            buffers = {name: [] for name in TABLES}
            done = 0
            for made in customer_stream(synth, places, rng, report.customers):
                buffers["customer"].append(made.customer)
                buffers["contact"] += made.contacts
                buffers["phone"] += made.phones
                buffers["account"] += made.accounts
                buffers["subscription"] += made.subscriptions
                buffers["record"] += made.records
                buffers["interaction"] += made.interactions
                done += 1
                if done % batch == 0:
                    _flush(cursor, schema, buffers)
                    log(f"{done:,} customers written")
            _flush(cursor, schema, buffers)
            started = time.perf_counter()
            for statement in restore:
                step = time.perf_counter()
                cursor.execute(statement)
                if time.perf_counter() - step > 1:
                    log(f"  {time.perf_counter() - step:.1f}s {statement[:110]}")
            if restore:
                log(f"indexes and foreign keys rebuilt: {time.perf_counter() - started:.1f}s")
            for name, (table, _columns) in TABLES.items():
                report.rows[name] = ids.count(name)
                _reset_sequence(cursor, schema, table)
        invalidate_scopes()  # memberships were written without signals
        if rollups:
            from reporting.services import recompute_later

            recompute_later()


def customer_stream(synth, places, rng, total):
    """Group customers with their branches first, then everyone else, ``total`` in all."""
    made = 0
    n_groups = min(max(5, total // 1000), total // 20)
    budget = total // 10  # at most a tenth of the customers belong to groups
    for _ in range(n_groups):
        national = rng.random() < 0.3
        owner = places.root if national else rng.choice(places.provinces)
        industry = synth.pick(synth.industries)
        brand = rng.choice(D.BRANDS)
        words = D.INDUSTRY_WORDS.get(industry) or ["实业"]
        name = (f"中国{brand}{rng.choice(words)}集团有限公司" if national
                else f"{D.short_place(owner.name)}{brand}{rng.choice(words)}集团有限公司")
        group = synth.customer(unit=owner, kind="enterprise", name=name, industry=industry, is_group=True,
                               national=national, size="large", status="active")
        yield group
        made += 1
        members = min(budget, 2 + int(rng.paretovariate(1.4) * 3), 60)
        budget -= members
        home = places.leaves_by_province.get(owner.id) or places.leaves
        for _ in range(members):
            leaf = rng.choice(home) if rng.random() < 0.6 and not national else places.pick_leaf(rng)
            city = D.short_place(synth.city_name(leaf))
            yield synth.customer(unit=leaf, kind="enterprise", name=f"{name}{city}分公司", industry=industry,
                                 group_id=group.customer[0], national=national,
                                 size=rng.choice(("medium", "large", "small")),
                                 status="active" if rng.random() < 0.9 else "abnormal")
            made += 1
    while made < total:
        yield synth.customer()
        made += 1


# --- Database steps -------------------------------------------------------------------------

def q(name):
    return '"' + name.replace('"', '""') + '"'


def _copy(cursor, schema, table, columns, rows):
    if not rows:
        return
    with cursor.cursor.copy(f"COPY {q(schema)}.{table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _flush(cursor, schema, buffers):
    for name, (table, columns) in TABLES.items():
        _copy(cursor, schema, table, columns, buffers[name])
        buffers[name].clear()


def _max_id(cursor, schema, table):
    cursor.execute(f"SELECT COALESCE(max(id), 0) FROM {q(schema)}.{table}")
    return cursor.fetchone()[0]


def _reset_sequence(cursor, schema, table):
    """Move the id sequence past the ids written here (never backwards)."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f"{q(schema)}.{table}"])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT GREATEST((SELECT max(id) FROM {q(schema)}.{table}), last_value), is_called FROM {sequence}")
    value, is_called = cursor.fetchone()
    if value is not None:
        cursor.execute("SELECT setval(%s, %s, true)", [sequence, value])


def _is_empty(cursor, schema):
    cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {q(schema)}.key_accounts_customer)")
    return cursor.fetchone()[0]


def _defer_indexes(cursor, schema):
    """For an initial load: drop the foreign keys and plain indexes of the archive's tables and
    of their history tables, and return the statements that put them back, the way pg_restore
    orders a load. Checking a foreign key row by row costs about seven times the COPY itself;
    one validating query per key and one index build per index after the load cost a fraction.
    Primary keys and unique constraints stay. Everything happens in the load's transaction, so
    a failed load leaves the schema as it was; the tables are empty, so nobody waits on them."""
    tables = [table for table, _columns in TABLES.values()]
    cursor.execute("SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relname = ANY(%s)",
                   [schema, [f"{table}event" for table in tables]])
    tables += sorted(row[0] for row in cursor.fetchall())
    oids = [f"{q(schema)}.{table}" for table in tables]
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2", [oids])
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
        "WHERE indrelid = ANY(%s::regclass[]) AND NOT indisunique AND NOT indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1", [oids])
    indexes = cursor.fetchall()
    for table, name, _definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {q(name)}")
    for index, _definition in indexes:
        cursor.execute(f"DROP INDEX {index}")
    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
    return ([definition for _index, definition in indexes]
            + [f"ALTER TABLE {table} ADD CONSTRAINT {q(name)} {definition}" for table, name, definition in foreign_keys])


def _ignore_history(cursor, schema):
    """Switch this transaction's history triggers off (pgtrigger's own ignore setting)."""
    names = [f"{q(schema)}.{table}" for table, _columns in TABLES.values()]
    cursor.execute("SELECT array_agg(tgname::text) FROM pg_trigger WHERE tgrelid = ANY(%s::regclass[]) "
                   "AND tgname LIKE 'pgtrigger_%%'", [names])
    triggers = cursor.fetchone()[0] or []
    cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", ["{" + ",".join(triggers) + "}"])


def _people(cursor, schema, places, report, rng):
    """The users of plan_people, made where missing (by username), with their memberships."""
    people = plan_people(places, report.customers, rng, f"{report.slug}.kam.local", PER_MANAGER)
    cursor.execute("SELECT code, id FROM permissions_role WHERE code = ANY(%s)", [sorted({p.role for p in people})])
    roles = dict(cursor.fetchall())
    missing = sorted({p.role for p in people} - set(roles))
    if missing:
        raise ValueError(f"the tenant lacks the built-in roles {', '.join(missing)}")
    cursor.execute("SELECT username, id FROM auth_user WHERE username = ANY(%s)", [[p.username for p in people]])
    existing = dict(cursor.fetchall())
    next_user = _max_id(cursor, schema, "auth_user")
    joined = dt.datetime.combine(report.until, dt.time()).isoformat() + "+08:00"
    users = []
    for person in people:
        person.id = existing.get(person.username)
        if person.id is None:
            next_user += 1
            person.id = next_user
            users.append((person.id, "!generated", False, person.username, person.given, person.surname,
                          person.username, False, True, joined))
    _copy(cursor, schema, "auth_user", USER_COLUMNS, users)
    cursor.execute("SELECT user_id, unit_id, role_id FROM permissions_membership WHERE user_id = ANY(%s)",
                   [[p.id for p in people]])
    held = set(cursor.fetchall())
    next_membership = _max_id(cursor, schema, "permissions_membership")
    memberships = []
    for person in people:
        if (person.id, person.unit.id, roles[person.role]) not in held:
            next_membership += 1
            memberships.append((next_membership, person.id, person.unit.id, roles[person.role], joined))
    _copy(cursor, schema, "permissions_membership", MEMBERSHIP_COLUMNS, memberships)
    for table in PEOPLE_TABLES.values():
        _reset_sequence(cursor, schema, table)
    report.rows["user"], report.rows["membership"] = len(users), len(memberships)
    return people


def _products(cursor, schema):
    """The product catalogue (made where missing, by code) as Synth wants it."""
    from key_accounts.models import Product

    have = {p.code: p for p in Product.objects.filter(code__in=[row[0] for row in D.PRODUCTS])}
    next_id = _max_id(cursor, schema, "key_accounts_product")
    new = []
    for code, name, category, *_rest in D.PRODUCTS:
        if code not in have:
            next_id += 1  # ids from here, not the sequence, so a seed gives the same rows
            new.append(Product(pk=next_id, code=code, name=name, category=category))
    for product in Product.objects.bulk_create(new):
        have[product.code] = product
    _reset_sequence(cursor, schema, "key_accounts_product")
    return [(have[code].pk, code, category, price, quantity, gb) for code, _n, category, price, quantity, gb in D.PRODUCTS]


def _grading(cursor, schema):
    """The tenant's grading ladder, highest grade first; the default one is saved when it has none."""
    from key_accounts.models import GradingRule

    rules = list(GradingRule.objects.all())
    if not rules:
        first = _max_id(cursor, schema, "key_accounts_gradingrule") + 1
        rules = GradingRule.objects.bulk_create([
            GradingRule(pk=first + n, grade=grade, min_monthly_revenue=revenue, min_products=count)
            for n, (grade, revenue, count) in enumerate(D.DEFAULT_GRADING)
        ])
        _reset_sequence(cursor, schema, "key_accounts_gradingrule")
    order = ["strategic", "A", "B", "C"]
    return [(r.grade, float(r.min_monthly_revenue), r.min_products) for r in sorted(rules, key=lambda r: order.index(r.grade))]


def _analyze(schema):
    from django.db import connection

    with connection.cursor() as cursor:
        for table in [t for t, _c in TABLES.values()] + list(PEOPLE_TABLES.values()):
            cursor.execute(f"ANALYZE {q(schema)}.{table}")


# --- Command line ---------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", required=True, help="slug of an existing tenant with an org tree")
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS,
                        help=f"how many customers (default {DEFAULT_CUSTOMERS:,}; full scale {FULL_CUSTOMERS:,})")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", type=int, default=12, help="months of billing records (default 12)")
    parser.add_argument("--until", help="the last billing month, YYYY-MM (default: last month)")
    parser.add_argument("--no-history", action="store_true",
                        help="skip the history triggers (only to measure their cost: the load leaves no change log)")
    args = parser.parse_args(argv)
    if args.until:
        try:
            args.until = dt.datetime.strptime(args.until, "%Y-%m").date()
        except ValueError:
            parser.error("--until must be YYYY-MM")
    return args


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.base")
    from kam.embedded import ensure_services

    services = ensure_services()  # noqa: F841  (embedded servers live as long as this object)
    import django

    django.setup()
    from bench._common import emit, log

    report = generate(tenant=args.tenant, customers=args.customers, seed=args.seed, months=args.months,
                      until=args.until, history=not args.no_history, log=log)
    log(f"generated into {report.schema}: " + ", ".join(f"{n} {name}s" for name, n in report.rows.items()))
    log(f"load {report.load_seconds:.1f}s, analyze {report.analyze_seconds:.1f}s")
    emit("generate_customers", report.rows["customer"], "rows")
    emit("generate_rows", report.total_rows, "rows")
    emit("generate_seconds", report.seconds, "s", digits=1)
    emit("generate_rows_per_s", report.rows_per_s, "rows/s", digits=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
