"""Roll-ups: the full recompute against a hand-written GROUP BY, the delay from a billing change to
the HQ figure through a real Celery worker, and the API reads of a dashboard.

    .venv/bin/python -m bench.rollups [--scale small|full] [--customers N] [--units N]
                                      [--only full,reads,incremental] [--keep] [--reuse]

On a scratch tenant: the bench org tree (HQ -> 7 regions -> 31 provinces -> 342 cities ->
districts, 2,000 units) filled by ``bench.generate`` (20,000 customers small, 1,000,000 full, 12
months of billing each). Then, in the same run and on the same rows:

- ``rollup_full_s``: ``reporting.services.recompute()``, every summary table rebuilt and swapped
  in (own rows of customers, subscriptions, products, groups and billing; subtree rows for every
  unit), committed; the median of the timed runs after one warm-up run.
- ``rollup_raw_sql_s``: one hand-written ``GROUP BY`` over the same billing records joined to
  their customers, by unit, month, grade and industry (revenue, arrears, discounts, distinct
  billed customers): the cost of reading the facts once, with the same ``work_mem``, its rows
  counted in the server; median of the runs interleaved with the recomputes. The bench checks
  that both give the same revenue and billed customers per month.
- ``rollup_incremental_s``: a worker (``celery worker --pool solo``) runs on the scratch database;
  a billing record of a district's customer is changed and committed, and the HQ subtree figure
  of its month is polled every 10 ms until it shows the change. The slowest of the samples
  (``_p50`` too).
- ``dashboard_read_p95_ms``: what a dashboard asks the API (``/api/v1/reports/figures/``,
  ``trend/`` over 12 months and ``ranking/`` of the child units), through the whole Django stack
  (tenant routing, session, DRF, scope) with Django's test client, for an HQ analyst, a
  provincial manager and a city account manager in turn.
- ``dashboard_page_p95_ms`` (and ``_p50``): the HTML dashboard (``/reports/``, the same month)
  for the same three viewers, read in the same rounds: its own reads plus the template.

``--only`` measures some parts (the others skipped; without "full", one untimed recompute fills
the tables first). ``--keep`` leaves the scratch database behind (``<database>_bench_rollups``,
``…_bench_rollups_<customers>`` for other sizes) and ``--reuse`` runs on it again instead of
generating; a run with ``--reuse`` and without ``--keep`` drops it at the end.

Prints one JSON object per line on stdout; details go to stderr.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

from bench._common import (
    describe, emit, load_tree, log, ms_since, percentile, scratch_database, scratch_tenant, setup_django,
    sized_suffix, tree_rows,
)

SCALES = {
    "small": {"customers": 20_000, "runs": 3, "changes": 5, "reads": 60},
    "full": {"customers": 1_000_000, "runs": 1, "changes": 10, "reads": 100},
}
ADMIN_EMAIL = "admin@rollups.example"
PARTS = ("full", "reads", "incremental")
POLL = 0.01
TIMEOUT = 60

# The hand-written baseline: plain GROUP BYs that give the same own figures as the engine, over
# the same rows (customers and their history, subscriptions, billing records), joined with the
# months of the window. Each is counted in the server (nothing is written); the bench checks that
# their totals are the engine's.
RAW_MONTHS = """
months AS (SELECT m::date AS month, ((m + interval '1 month')::timestamp AT TIME ZONE %(tz)s) AS month_end,
                  (m::timestamp AT TIME ZONE %(tz)s) AS month_start
             FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') AS m),
churned AS (
    SELECT c.id, min(e.pgh_created_at) AS at
      FROM key_accounts_customer c JOIN key_accounts_customerevent e ON e.pgh_obj_id = c.id AND e.status = 'churned'
     WHERE c.status = 'churned'
       AND NOT EXISTS (SELECT FROM key_accounts_customerevent o WHERE o.pgh_obj_id = c.id AND o.status <> 'churned'
                                                              AND o.pgh_created_at > e.pgh_created_at)
     GROUP BY c.id
)"""

RAW_MEASURES = """
WITH """ + RAW_MONTHS + """,
people AS (
    SELECT c.*, {key} AS cell, c.status = 'churned' AS is_churned, coalesce(ch.at, c.created_at) AS churned_at
      FROM key_accounts_customer c LEFT JOIN churned ch ON ch.id = c.id {where}
),
stock AS (
    SELECT p.org_unit_id, m.month, p.cell, count(*) AS customers,
           count(*) FILTER (WHERE gone) AS churned,
           count(*) FILTER (WHERE NOT gone AND p.status = 'prospect') AS prospects,
           count(*) FILTER (WHERE NOT gone AND p.status IN ('active', 'churned')) AS active,
           count(*) FILTER (WHERE NOT gone AND p.status = 'abnormal') AS abnormal,
           count(*) FILTER (WHERE p.kind = 'enterprise') AS enterprises,
           count(*) FILTER (WHERE p.kind = 'government') AS governments,
           count(*) FILTER (WHERE p.kind = 'institution') AS institutions,
           count(*) FILTER (WHERE p.kind = 'individual') AS individuals,
           count(*) FILTER (WHERE p.is_national_key_account) AS national,
           count(*) FILTER (WHERE p.created_at >= m.month_start) AS new_customers,
           count(*) FILTER (WHERE p.is_churned AND p.churned_at >= m.month_start AND p.churned_at < m.month_end)
               AS lost_customers
      FROM people p JOIN months m ON p.created_at < m.month_end
     CROSS JOIN LATERAL (SELECT p.is_churned AND p.churned_at < m.month_end AS gone) g
     GROUP BY 1, 2, 3
),
subscribed AS (
    SELECT p.org_unit_id, m.month, p.cell, count(*) AS subscriptions
      FROM key_accounts_subscription s JOIN people p ON p.id = s.customer_id
      JOIN months m ON s.start_date < m.month + interval '1 month' AND (s.end_date IS NULL OR s.end_date >= m.month)
     GROUP BY 1, 2, 3
),
billed AS (
    SELECT p.org_unit_id, b.month, p.cell, count(DISTINCT b.customer_id) AS billed_customers,
           sum(b.revenue) AS revenue, sum(b.arrears) AS arrears, sum(b.discount) AS discount
      FROM key_accounts_billingrecord b JOIN people p ON p.id = b.customer_id
     WHERE b.month BETWEEN %(first)s AND %(last)s
     GROUP BY 1, 2, 3
)
SELECT count(*), coalesce(sum(customers), 0), coalesce(sum(churned), 0), coalesce(sum(new_customers), 0),
       coalesce(sum(subscriptions), 0), coalesce(sum(billed_customers), 0), coalesce(sum(revenue), 0)
  FROM stock FULL JOIN subscribed USING (org_unit_id, month, cell) FULL JOIN billed USING (org_unit_id, month, cell)
"""

RAW_PRODUCTS = """
WITH """ + RAW_MONTHS + """
SELECT count(*), coalesce(sum(holders), 0), coalesce(sum(subscriptions), 0), coalesce(sum(monthly_fee), 0) FROM (
    SELECT c.org_unit_id, m.month, s.product_id, count(DISTINCT s.customer_id) AS holders, count(*) AS subscriptions,
           sum(s.quantity) AS quantity, sum(s.monthly_fee) AS monthly_fee
      FROM key_accounts_subscription s JOIN key_accounts_customer c ON c.id = s.customer_id
      JOIN months m ON s.start_date < m.month + interval '1 month' AND (s.end_date IS NULL OR s.end_date >= m.month)
     GROUP BY 1, 2, 3
) per_product
"""

RAW_QUERIES = {
    "main": RAW_MEASURES.format(key="(c.grade, c.industry)", where=""),
    "groups": RAW_MEASURES.format(key="CASE WHEN c.is_group THEN c.id ELSE c.group_id END",
                                  where="WHERE c.is_group OR c.group_id IS NOT NULL"),
    "products": RAW_PRODUCTS,
}

# Only the billing records: the cheapest single pass, for reference.
RAW_BILLING = """
SELECT count(*), coalesce(sum(revenue), 0), coalesce(sum(billed), 0) FROM (
    SELECT c.org_unit_id, b.month, c.grade, c.industry, count(DISTINCT b.customer_id) AS billed,
           sum(b.revenue) AS revenue, sum(b.arrears) AS arrears, sum(b.discount) AS discount
      FROM key_accounts_billingrecord b JOIN key_accounts_customer c ON c.id = b.customer_id
     WHERE b.month BETWEEN %(first)s AND %(last)s
     GROUP BY c.org_unit_id, b.month, c.grade, c.industry
) per_cell
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.rollups", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--customers", type=int, help="default: 20,000 small, 1,000,000 full")
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to measure (default all: {','.join(PARTS)})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="run on the scratch database a --keep run left, if any")
    args = parser.parse_args(argv)
    args.only = [part for part in args.only.split(",") if part]
    if set(args.only) - set(PARTS):
        parser.error(f"--only takes {', '.join(PARTS)}")
    args.plan = SCALES[args.scale]
    args.customers = args.customers or args.plan["customers"]
    return args


# --- Full recompute against the raw GROUP BY -----------------------------------------------------

def raw_sql(queries):
    """Run the hand-written queries in one transaction with the recompute's work_mem; returns
    ``(seconds, {name: totals})``."""
    from django.conf import settings
    from django.db import connection, transaction

    from reporting import engine

    first, last = engine.window()
    params = {"first": first, "last": last, "tz": settings.TIME_ZONE}
    answers = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.KAM_ROLLUP_WORK_MEM])
        started = time.perf_counter()
        for name, sql in queries.items():
            cursor.execute(sql, params)
            answers[name] = cursor.fetchone()
        return time.perf_counter() - started, answers


def engine_totals():
    """The engine's own rows, added up like the raw queries' answers."""
    from django.db import connection

    with connection.cursor() as cursor:
        totals = {}
        for name, table in (("main", "reporting_unit_month"), ("groups", "reporting_group_month")):
            cursor.execute(f"SELECT count(*), sum(customers), sum(churned), sum(new_customers), sum(subscriptions), "
                           f"sum(billed_customers), sum(revenue) FROM {table}")
            totals[name] = cursor.fetchone()
        cursor.execute("SELECT count(*), sum(holders), sum(subscriptions), sum(monthly_fee) FROM reporting_unit_product_month")
        totals["products"] = cursor.fetchone()
    return totals


def check(answers, totals):
    """Same figures: every total (the row counts too, but the raw queries also keep cells whose
    figures are all zero, so those only bound the engine's)."""
    for name, answer in answers.items():
        mine = totals[name]
        if tuple(x or 0 for x in mine[1:]) != tuple(answer[1:]) or mine[0] > answer[0]:
            raise AssertionError(f"{name}: the roll-up gives {mine}, the hand-written SQL {answer}")


def measure_full(runs):
    from reporting import services

    log("warm-up: one recompute and the hand-written queries")
    log(f"  recompute: {services.recompute()}")
    seconds, answers = raw_sql(RAW_QUERIES)
    log(f"  hand-written: {seconds:.1f}s {answers}")
    check(answers, engine_totals())
    full, raw, billing = [], [], []
    for run in range(runs):
        seconds, _answers = raw_sql(RAW_QUERIES)
        raw.append(seconds)
        billing.append(raw_sql({"billing": RAW_BILLING})[0])
        started = time.perf_counter()
        result = services.recompute()
        full.append(time.perf_counter() - started)
        log(f"run {run + 1}: hand-written {raw[-1]:.1f}s (billing alone {billing[-1]:.1f}s), "
            f"recompute {full[-1]:.1f}s {result['rows']}")
    full_s, raw_s = statistics.median(full), statistics.median(raw)
    emit("rollup_full_s", full_s, "s")
    emit("rollup_raw_sql_s", raw_s, "s")
    emit("rollup_full_vs_sql_ratio", full_s / raw_s, "x")
    emit("rollup_raw_billing_sql_s", statistics.median(billing), "s")


# --- Dashboard reads ------------------------------------------------------------------------

def viewers(tenant):
    """An HQ analyst, a provincial manager and a city account manager (committed)."""
    from django.contrib.auth import get_user_model

    from org_hierarchy.models import OrgUnit
    from permissions.models import Membership, Role

    roles = {role.code: role for role in Role.objects.all()}
    hq = OrgUnit.objects.get(depth=1)
    province = OrgUnit.objects.filter(level__code="province").order_by("-numchild", "code").first()
    city = OrgUnit.objects.filter(level__code="city", path__startswith=province.path).order_by("-numchild", "code").first()
    people = []
    for name, unit, role in (("hq", hq, "hq_analyst"), ("province", province, "provincial_manager"),
                             ("city", city, "account_manager")):
        user, made = get_user_model().objects.get_or_create(username=f"bench-{name}@rollups.example")
        if made:
            Membership.objects.create(user=user, unit=unit, role=roles[role])
        people.append((name, user, unit))
    return people


def measure_reads(tenant, reads):
    from django.test import Client

    from reporting import engine

    people = viewers(tenant)
    host = tenant.domains.get(is_primary=True).domain
    # The latest billed month (the generator bills up to last month), and the 12 months to it.
    params = {"month_to": f"{engine.add_months(engine.window()[1], -1):%Y-%m}"}
    urls = ["/api/v1/reports/figures/", "/api/v1/reports/trend/", "/api/v1/reports/ranking/"]
    page = "/reports/"
    timings = {url: [] for url in (*urls, page)}
    for name, user, unit in people:
        client = Client(HTTP_HOST=host)
        client.force_login(user)
        for url in timings:  # warm: the scope goes to the cache
            response = client.get(url, params)
            if response.status_code != 200:
                raise AssertionError(f"{url} for {name}: {response.status_code} {response.content[:300]}")
        log(f"{name} at {unit.code}: revenue {client.get(urls[0], params).json()['subtree']['revenue']}")
        for _ in range(reads):
            for url in timings:
                started = time.perf_counter()
                response = client.get(url, params)
                timings[url].append(ms_since(started))
                assert response.status_code == 200
    pages = timings.pop(page)
    every = [ms for values in timings.values() for ms in values]
    for url, values in timings.items():
        log(describe(url, values))
        emit(f"dashboard_read_{url.rstrip('/').rsplit('/', 1)[1]}_p95_ms", percentile(values, 95), "ms")
    emit("dashboard_read_p50_ms", percentile(every, 50), "ms")
    emit("dashboard_read_p95_ms", percentile(every, 95), "ms")
    log(describe(page, pages))
    emit("dashboard_page_p50_ms", percentile(pages, 50), "ms")
    emit("dashboard_page_p95_ms", percentile(pages, 95), "ms")


# --- Incremental refresh through a real worker -----------------------------------------------

def start_worker(log_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="kam.settings.base", KAM_LOG_FORMAT="text", KAM_LOG_LEVEL="INFO",
               PYTHONUNBUFFERED="1")
    from django.conf import settings

    handle = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kam", "worker", "--pool", "solo", "--concurrency", "1",
         "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        env=env, stdout=handle, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while " ready." not in open(log_path, errors="replace").read():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Celery worker did not start; see {log_path}")
        time.sleep(0.2)
    return process, handle


def hq_revenue(hq_id, month):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(revenue), 0) FROM reporting_subtree_month WHERE unit_id = %s AND month = %s",
                       [hq_id, month])
        return cursor.fetchone()[0]


def measure_incremental(changes):
    import random
    from decimal import Decimal

    from django.db import connection, transaction

    from kam import history
    from kam.celery import app
    from key_accounts.models import BillingRecord
    from org_hierarchy.models import OrgUnit
    from reporting import dirty

    hq = OrgUnit.objects.get(depth=1)
    deepest = OrgUnit.objects.order_by("-depth").values_list("depth", flat=True).first()
    records = list(
        BillingRecord.objects.filter(customer__org_unit__depth=deepest).order_by("-month", "id").values_list("pk", flat=True)[:5000]
    )
    rng = random.Random(5)
    log_path = f"/tmp/bench-rollups-worker-{os.getpid()}.log"
    # The generator queued a recompute for after its load (reporting.services.recompute_later);
    # the bench ran its own, so the worker starts with an empty queue.
    app.control.purge()
    dirty.release_full(connection.schema_name)
    process, handle = start_worker(log_path)
    delays = []
    try:
        for sample in range(changes):
            record = BillingRecord.objects.get(pk=rng.choice(records))
            before = hq_revenue(hq.pk, record.month)
            delta = Decimal(rng.randint(1, 9999)) / 100
            with transaction.atomic(), history.acting("bench", via="billing"):
                record.revenue += delta
                record.save(update_fields=["revenue"])
            committed = time.perf_counter()
            while hq_revenue(hq.pk, record.month) != before + delta:
                if time.perf_counter() - committed > TIMEOUT:
                    raise AssertionError(f"the change did not reach HQ in {TIMEOUT}s; see {log_path}")
                time.sleep(POLL)
            delays.append(time.perf_counter() - committed)
            log(f"change {sample + 1}: +{delta} at {record.customer_id}'s unit, {record.month:%Y-%m}: "
                f"HQ after {delays[-1]:.2f}s")
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
        handle.close()
        app.control.purge()
    runs = open(log_path, errors="replace").read().count("rollup_refresh[")
    log(f"worker log {log_path}: {runs} rollup_refresh lines")
    emit("rollup_incremental_p50_s", statistics.median(delays), "s")
    emit("rollup_incremental_s", max(delays), "s")


def run(args, reused=False):
    setup_django()
    from django_tenants.utils import schema_context

    from bench.generate import generate
    from key_accounts.models import Customer
    from reporting import services

    tenant = scratch_tenant("rollups", existing=True) if reused else None
    if tenant is None:
        tenant = scratch_tenant("rollups", admin_email=ADMIN_EMAIL)
        with schema_context(tenant.schema_name):
            load_tree(tree_rows(args.units))
        started = time.perf_counter()
        report = generate(tenant=tenant, customers=args.customers, months=12, log=log)
        log(f"generated {report.rows} in {time.perf_counter() - started:.0f}s")
    with schema_context(tenant.schema_name):
        found = Customer.objects.count()
        if found != args.customers:
            raise SystemExit(f"the kept scratch database holds {found:,} customers, not {args.customers:,}: "
                             "run once without --reuse to make a new one")
        if "full" in args.only:
            measure_full(args.plan["runs"])
        else:  # the reads need current figures
            log(f"recompute: {services.recompute()}")
        if "reads" in args.only:
            measure_reads(tenant, args.plan["reads"])
        if "incremental" in args.only:
            measure_incremental(args.plan["changes"])


def main(argv=None):
    args = parse_args(argv)
    # A queue of this run's own: no other worker on the same Redis takes its tasks.
    os.environ["KAM_CELERY_QUEUE"] = f"bench-rollups-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    suffix = sized_suffix("bench_rollups", args.customers, SCALES["small"]["customers"])
    with scratch_database(suffix, keep=args.keep, reuse=args.reuse) as scratch:
        run(args, reused=scratch.reused)
    return 0


if __name__ == "__main__":
    sys.exit(main())
