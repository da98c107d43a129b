"""The customer archive's reads through the API: list pages, name and phone search, caller-ID.

    .venv/bin/python -m bench.accounts [--scale small|full] [--customers N] [--requests N] [--explain] [--keep] [--reuse]

On a scratch tenant with the 2,000-unit bench tree (HQ -> 7 regions -> 31 provinces -> 342
cities -> districts) and data from bench.generate (50,000 customers small, 1,000,000 full, 12
months of billing), then VACUUM ANALYZE. Requests go through Django's test Client (the whole
stack: tenant routing, session, permissions, DRF, serialisers) for three kinds of users:

- ``hq``: an HQ analyst (hq_analyst at the root): every customer;
- ``province``: provincial managers (provincial_manager at a province), the generator's own;
- ``city``: account managers at a city (account_manager there: the city and its districts).

Per user kind: ``GET /api/v1/customers/?page=N`` (pages 1-5, 50 rows and the total), name
search ``?q=<3-4 characters of a visible customer's name, legal form left out>`` (and, reported
apart, 2 characters), phone search ``?phone=<a visible customer's number: whole, in another
format, or its last 6-8 digits>`` and ``GET /api/v1/caller-id/?number=...`` (a stored number
as callers present it; one in ten is unknown). ``request_floor_*`` is the same stack around the
product catalogue (a few rows): what any request costs before the archive is read. Server time is the Client call; queries per request come from a separate pass under
CaptureQueriesContext. Prints one JSON object per line; ``--explain`` prints every query of one
request of each kind with its plan on stderr.

``--keep`` leaves the scratch database (``<database>_bench_accounts``, ``…_bench_accounts_<customers>``
for other sizes) behind; ``--reuse`` runs
on the one a kept run left (after ``migrate_all``, so new migrations apply) instead of generating
again, when it holds the same number of customers. Drop it with ``--reuse`` without ``--keep``.
"""
import argparse
import random
import sys
import time

from bench._common import (
    describe, emit, load_tree, log, ms_since, percentile, scratch_database, scratch_tenant, setup_django,
    sized_suffix, tree_rows,
)

SCALES = {"small": {"customers": 50_000, "requests": 60}, "full": {"customers": 1_000_000, "requests": 200}}
KINDS = ("hq", "province", "city")
ENDPOINTS = ("list", "search_name", "search_name_2char", "search_phone", "callerid")
USERS_PER_KIND = 5
WARMUP = 10
PAGES = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--customers", type=int, help="customers to generate (default 50,000 small, 1,000,000 full)")
    parser.add_argument("--requests", type=int, help="timed requests per endpoint and user kind (60 small, 200 full)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every query of one request of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database for a later --reuse")
    parser.add_argument("--reuse", action="store_true", help="run on the scratch database a --keep run left, if any")
    args = parser.parse_args(argv)
    args.customers = args.customers or SCALES[args.scale]["customers"]
    args.requests = args.requests or SCALES[args.scale]["requests"]
    return args


# --- Data -----------------------------------------------------------------------------------

def build(tenant, args):
    """Tree, generated archive, VACUUM ANALYZE; returns ``{kind: [users]}``."""
    from django_tenants.utils import schema_context

    from bench.generate import generate

    with schema_context(tenant.schema_name):
        started = time.perf_counter()
        units = load_tree(tree_rows(2000))
        log(f"{len(units)} units: {time.perf_counter() - started:.1f}s")
    report = generate(tenant=tenant, customers=args.customers, seed=args.seed, rollups=False, log=log)
    log("generated: " + ", ".join(f"{n:,} {name}s" for name, n in report.rows.items()))
    log(f"generate: {report.seconds:.1f}s ({report.load_seconds:.1f}s load, {report.analyze_seconds:.1f}s analyze), "
        f"{report.rows_per_s:,.0f} rows/s")
    vacuum = vacuum_analyze(tenant)
    with schema_context(tenant.schema_name):
        people = pick_people(units)
    return report, vacuum, people


def reopen(tenant, args):
    """The kept tenant's users (build's report and VACUUM figures are those of the kept run:
    reported as None), after a VACUUM ANALYZE for whatever new migrations built."""
    from django_tenants.utils import schema_context

    from key_accounts.models import Customer
    from org_hierarchy.models import OrgUnit

    with schema_context(tenant.schema_name):
        found = Customer.objects.count()
        if found != args.customers:
            raise SystemExit(f"the kept scratch database holds {found:,} customers, not {args.customers:,}: "
                             "run once without --reuse to make a new one")
        units = {u.code: u for u in OrgUnit.objects.select_related("level")}
    vacuum_analyze(tenant)
    with schema_context(tenant.schema_name):
        people = pick_people(units, existing=True)
    log(f"reusing the kept tenant: {found:,} customers")
    return None, None, people


def vacuum_analyze(tenant):
    from django.db import connection
    from django_tenants.utils import schema_context

    started = time.perf_counter()
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'key_accounts_%%'",
                       [tenant.schema_name])
        for (table,) in cursor.fetchall():  # autocommit: VACUUM cannot run in a transaction
            cursor.execute(f'VACUUM (ANALYZE) "{tenant.schema_name}".{table}')
    vacuum = time.perf_counter() - started
    log(f"VACUUM ANALYZE: {vacuum:.1f}s")
    return vacuum


def pick_people(units, existing=False):
    """HQ analysts, provincial managers and account managers at cities (made here: the generator
    puts account managers at the leaves, the districts), ``USERS_PER_KIND`` of each."""
    from django.contrib.auth import get_user_model

    from permissions.models import Membership, Role

    User = get_user_model()

    def holding(role_code, level_code):
        return list(User.objects.filter(memberships__role__code=role_code, memberships__unit__level__code=level_code)
                    .order_by("id"))

    hq = holding("hq_analyst", "hq")[:USERS_PER_KIND]
    provinces = holding("provincial_manager", "province")
    provinces = provinces[:: max(1, len(provinces) // USERS_PER_KIND)][:USERS_PER_KIND]
    cities = sorted((u for u in units.values() if u.level.code == "city" and u.numchild), key=lambda u: u.code)
    role = Role.objects.get(code="account_manager")
    city_users = []
    for n, city in enumerate(cities[:: max(1, len(cities) // USERS_PER_KIND)][:USERS_PER_KIND]):
        username = f"bench-city-{n}@bench.example"
        if existing:
            city_users.append(User.objects.get(username=username))
            continue
        user = User.objects.create_user(username=username, password=None)
        Membership.objects.create(user=user, unit=city, role=role)
        city_users.append(user)
    return {"hq": hq, "province": provinces, "city": city_users}


# --- Requests -------------------------------------------------------------------------------

def visible_samples(user, rng, n=400):
    """Names and phone numbers of customers ``user`` may see, to search for."""
    from django.db.models import Max, Min

    from key_accounts import selectors
    from key_accounts.models import Contact

    visible = selectors.customers(user=user)
    bounds = visible.aggregate(low=Min("id"), high=Max("id"))
    rows = []
    for _ in range(n):  # random ids in range, the next visible one: a uniform-enough sample, cheaply
        row = visible.filter(id__gte=rng.randint(bounds["low"], bounds["high"])).order_by("id").values(
            "id", "name", "phone").first()
        if row:
            rows.append(row)
    contact_phones = dict(Contact.objects.filter(customer_id__in=[r["id"] for r in rows]).values_list("customer_id", "phones"))
    pages = max(1, min(PAGES, -(-visible.count() // 50)))
    return rows, contact_phones, pages


LEGAL_SUFFIXES = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "分公司")


def search_fragment(name, rng, size=None):
    """3 or 4 characters of ``name`` (the whole name when it is that short): what someone types
    to find a company or a person. The legal form at the end ("有限公司") is left out: people
    search for the part that tells companies apart. ``size`` 2 gives the two-character searches
    (a person's name, a brand) that no trigram can index."""
    for suffix in LEGAL_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 3:
            name = name[: -len(suffix)]
            break
    size = min(len(name), size or rng.choice((3, 4)))
    start = rng.randrange(0, len(name) - size + 1)
    return name[start:start + size]


def phone_query(text, rng):
    """A stored number as someone would type it: whole in another format, or its last digits."""
    from key_accounts import phones

    numbers = phones.digits_of(text)
    digits = rng.choice(numbers) if numbers else f"1{rng.randrange(10**10):010d}"
    style = rng.random()
    if style < 0.3:
        return digits
    if style < 0.5:
        return f"+86 {digits.lstrip('0')}" if not digits.startswith("1") else f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    if style < 0.8:
        return digits[-8:]
    return digits[-6:]


def caller_number(text, rng):
    from key_accounts import phones

    if rng.random() < 0.1:
        return f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"  # not a customer
    numbers = phones.digits_of(text)
    digits = rng.choice(numbers) if numbers else "13800000000"
    return f"+86{digits.lstrip('0')}" if rng.random() < 0.5 else digits


def plan_requests(people, rng, count):
    """``{(endpoint, kind): [(user index, url)]}``: ``count`` requests each."""
    plan = {}
    for kind in KINDS:
        samples = [visible_samples(user, rng) for user in people[kind]]
        for endpoint in ENDPOINTS:
            urls = []
            for i in range(count + WARMUP):
                u = i % len(people[kind])
                rows, contact_phones, pages = samples[u]
                row = rng.choice(rows)
                text = contact_phones.get(row["id"], row["phone"]) if rng.random() < 0.6 else row["phone"]
                if endpoint == "list":
                    url = f"/api/v1/customers/?page={rng.randint(1, pages)}"
                elif endpoint == "search_name":
                    while len(row["name"]) < 3:  # a two-character name is the other bench's
                        row = rng.choice(rows)
                    url = "/api/v1/customers/?" + urlencode(q=search_fragment(row["name"], rng))
                elif endpoint == "search_name_2char":
                    url = "/api/v1/customers/?" + urlencode(q=search_fragment(row["name"], rng, size=2))
                elif endpoint == "search_phone":
                    url = "/api/v1/customers/?" + urlencode(phone=phone_query(text, rng))
                else:
                    url = "/api/v1/caller-id/?" + urlencode(number=caller_number(text, rng))
                urls.append((u, url))
            plan[(endpoint, kind)] = urls
    # The floor: the same stack (tenant, session, user, permission, DRF) around a tiny read.
    plan[("floor", "hq")] = [(i % len(people["hq"]), "/api/v1/products/") for i in range(count + WARMUP)]
    return plan


def urlencode(**params):
    import urllib.parse

    return urllib.parse.urlencode(params)


def clients_for(tenant, people):
    from django.test import Client
    from django_tenants.utils import schema_context

    host = tenant.get_primary_domain().domain
    clients = {}
    with schema_context(tenant.schema_name):
        for kind, users in people.items():
            clients[kind] = []
            for user in users:
                client = Client(HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE="en")
                client.force_login(user)
                clients[kind].append(client)
    return clients


def backend_cpu_ns(pid):
    """CPU time the PostgreSQL backend ``pid`` has used (ns, from /proc; 0 where there is none)."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[0])
    except OSError:
        return 0


def timed_get(client, url, pid=None):
    """(wall ms, CPU ms of this thread and the database backend, response)."""
    cpu = time.thread_time_ns() + (backend_cpu_ns(pid) if pid else 0)
    started = time.perf_counter()
    response = client.get(url)
    elapsed = ms_since(started)
    cpu = (time.thread_time_ns() + (backend_cpu_ns(pid) if pid else 0) - cpu) / 1e6
    if response.status_code != 200:
        raise AssertionError(f"GET {url}: {response.status_code} {response.content[:300]!r}")
    return elapsed, cpu, response


def run(args, reused=False):
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.scopes import explain_queries

    rng = random.Random(args.seed)
    tenant = scratch_tenant("bench-accounts", existing=True) if reused else None
    if tenant is not None:
        report, vacuum, people = reopen(tenant, args)
    else:
        tenant = scratch_tenant("bench-accounts")
        report, vacuum, people = build(tenant, args)
    with _tenant(tenant):
        plan = plan_requests(people, rng, args.requests)
    clients = clients_for(tenant, people)
    connection.set_schema_to_public()
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid  # the test Client keeps this connection

    timings, cpu, queries, results = {}, {}, {}, {}
    # Interleave endpoints and kinds round by round, so machine noise spreads over all of them.
    order = list(plan)
    for i in range(args.requests + WARMUP):
        for key in order:
            endpoint, kind = key
            u, url = plan[key][i]
            elapsed, used, response = timed_get(clients[kind][u], url, pid)
            if i >= WARMUP:
                timings.setdefault(key, []).append(elapsed)
                cpu.setdefault(key, []).append(used)
                results.setdefault(key, []).append(len(response.json()["results"]))
    for key in order:  # queries per request, in a pass of its own (capturing costs time)
        endpoint, kind = key
        counts = []
        for u, url in plan[key][:10]:
            with CaptureQueriesContext(connection) as captured:
                timed_get(clients[kind][u], url)
            counts.append(len(captured))
        queries[key] = max(counts)
        if args.explain:
            u, url = plan[key][0]
            with CaptureQueriesContext(connection) as captured:
                timed_get(clients[kind][u], url)
            with _tenant(tenant):
                explain_queries(f"{endpoint} for {kind}: GET {url}", captured.captured_queries)

    for key in order:
        endpoint, kind = key
        rows = results[key]
        log(describe(f"{endpoint} {kind}", timings[key]) + f"; CPU p50 {percentile(cpu[key], 50):.1f} "
            f"p95 {percentile(cpu[key], 95):.1f} ms; queries {queries[key]}; "
            f"rows per response mean {sum(rows) / len(rows):.1f}, empty {sum(1 for r in rows if r == 0)}")

    emit("accounts_customers", args.customers, "rows")
    if report is not None:  # a reused database was generated by an earlier run
        emit("accounts_generate_s", report.seconds, "s", digits=1)
        emit("accounts_generate_rows_per_s", report.rows_per_s, "rows/s", digits=0)
        emit("accounts_vacuum_s", vacuum, "s", digits=1)
    for kind in KINDS:
        for p in (50, 95):
            emit(f"list_{kind}_p{p}_ms", percentile(timings[("list", kind)], p), "ms")
        emit(f"list_{kind}_cpu_p95_ms", percentile(cpu[("list", kind)], 95), "ms")
    for endpoint in ENDPOINTS[1:]:
        for name, values in (("", timings), ("_cpu", cpu)):
            pooled = [v for kind in KINDS for v in values[(endpoint, kind)]]
            for p in (50, 95):
                emit(f"{endpoint}{name}_p{p}_ms", percentile(pooled, p), "ms")
        for kind in KINDS:
            emit(f"{endpoint}_{kind}_p95_ms", percentile(timings[(endpoint, kind)], 95), "ms")
    for p in (50, 95):
        emit(f"request_floor_p{p}_ms", percentile(timings[("floor", "hq")], p), "ms")
    emit("request_floor_queries", queries[("floor", "hq")], "queries")
    for endpoint in ENDPOINTS:
        metric = "list_queries" if endpoint == "list" else f"{endpoint}_queries"
        emit(metric, max(queries[(endpoint, kind)] for kind in KINDS), "queries")


def _tenant(tenant):
    from django_tenants.utils import schema_context

    return schema_context(tenant.schema_name)


def main(argv=None):
    args = parse_args(argv)
    suffix = sized_suffix("bench_accounts", args.customers, SCALES["small"]["customers"])
    with scratch_database(suffix, keep=args.keep, reuse=args.reuse) as scratch:
        run(args, reused=scratch.reused)
    return 0


if __name__ == "__main__":
    sys.exit(main())
