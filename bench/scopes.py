"""Scoped permissions: scope resolution, a subtree move under readers, visible objects vs. guardian.

    .venv/bin/python -m bench.scopes [--scale small|full] [--users N] [--grants N] [--explain]

On a scratch tenant: 2,000 org units (HQ -> 7 regions -> 31 provinces -> 342 cities ->
districts), 20,000 users with their memberships (HQ analysts, region, province and city managers,
provincial admins, account managers at districts, a quarter of them at two) and 100,000 direct
object grants (OrgUnitUserObjectPermission, view or change on random units). Measures, on a
sample of users of every kind:

- ``permissions.scope.resolve_scope`` cold (right after ``invalidate_scopes()``: computed from
  the database and stored) and cached (a fresh user object: the scope comes from Redis);
- "org units this user may see" through guardian's ``get_objects_for_user`` and through
  ``permissions.selectors.visible()``, interleaved, on the same data;
- ``org_hierarchy.services.unit_move`` of a province of about 50 units to another region and
  back, by the tenant admin: twice alone, then while a reader thread keeps resolving scopes and
  listing visible units and a watcher samples the reader's backend in ``pg_stat_activity`` (a
  reader blocked by the move would be seen waiting on a lock, and no read would fit inside a move).

The data set is the issue's at both scales; ``full`` times more users and moves. Prints one JSON
object per line on stdout; details (and with --explain the plans of every query) go to stderr.
"""
import argparse
import random
import statistics
import sys
import threading
import time

from bench._common import (
    describe, emit, load_tree, log, ms_since, percentile, pick_move, scratch_database, scratch_tenant, setup_django,
    tree_rows,
)

SAMPLES = {"small": {"per_kind": 40, "visible": 15, "rounds": 2, "moves": 4},
           "full": {"per_kind": 200, "visible": 60, "rounds": 3, "moves": 10}}
ADMIN_EMAIL = "admin@bench.example"

# (kind, role, level of the unit, users per unit at that level); everyone else is an account
# manager at a district (ACCOUNT_MANAGER), a quarter of them at a second district too.
KINDS = [
    ("hq_analyst", "hq_analyst", "hq", 20),
    ("region_manager", "provincial_manager", "region", 5),
    ("provincial_manager", "provincial_manager", "province", 8),
    ("provincial_admin", "provincial_admin", "province", 2),
    ("city_manager", "provincial_manager", "city", 5),
]
ACCOUNT_MANAGER = "account_manager"
SECOND_DISTRICT = 0.25
CHANGE_GRANTS = 0.2  # the rest are view grants


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.scopes", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SAMPLES), default="small")
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every query of one call of each kind")
    args = parser.parse_args(argv)
    args.samples = SAMPLES[args.scale]
    if args.users < 5000:
        parser.error("--users must be at least 5,000 (the managers alone take about 2,100)")
    return args


# --- Data -----------------------------------------------------------------------------------

def copy_rows(table, columns, rows):
    from django.db import connection

    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def load_people(units, n_users, n_grants, rng):
    """Users, memberships and object grants; returns ``({kind: [user pk]}, memberships)``."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.utils import timezone

    from permissions.models import Membership, OrgUnitUserObjectPermission, Role
    from permissions.scope import invalidate_scopes

    User = get_user_model()
    roles = {role.code: role.pk for role in Role.objects.all()}
    by_level = {}
    for unit in units.values():
        by_level.setdefault(unit.level.code, []).append(unit)
    districts_of = {}
    for unit in by_level["district"]:
        districts_of.setdefault(unit.parent_id, []).append(unit)

    started = time.perf_counter()
    users = User.objects.bulk_create(
        [User(username=f"user{i:05d}", email=f"user{i:05d}@bench.example", password="!bench") for i in range(n_users)],
        batch_size=5000,
    )
    pool = iter(users)
    kinds, memberships = {}, []
    for kind, role, level, per_unit in KINDS:
        for unit in by_level[level]:
            for _ in range(per_unit):
                user = next(pool)
                kinds.setdefault(kind, []).append(user.pk)
                memberships.append((user.pk, unit.pk, roles[role]))
    for user in pool:
        district = rng.choice(by_level["district"])
        kinds.setdefault(ACCOUNT_MANAGER, []).append(user.pk)
        memberships.append((user.pk, district.pk, roles[ACCOUNT_MANAGER]))
        if rng.random() < SECOND_DISTRICT:
            others = [d for d in districts_of[district.parent_id] if d.pk != district.pk] or by_level["district"]
            second = rng.choice(others)
            if second.pk != district.pk:
                memberships.append((user.pk, second.pk, roles[ACCOUNT_MANAGER]))
    now = timezone.now()
    copy_rows(Membership._meta.db_table, ["user_id", "unit_id", "role_id", "created_at"],
              ((user, unit, role, now) for user, unit, role in memberships))

    perms = dict(Permission.objects.filter(content_type__app_label="org_hierarchy", content_type__model="orgunit",
                                           codename__in=["view_orgunit", "change_orgunit"]).values_list("codename", "pk"))
    unit_pks = [u.pk for u in units.values()]
    user_pks = [u.pk for u in users]
    grants = set()
    while len(grants) < n_grants:
        codename = "change_orgunit" if rng.random() < CHANGE_GRANTS else "view_orgunit"
        grants.add((rng.choice(user_pks), rng.choice(unit_pks), perms[codename]))
    copy_rows(OrgUnitUserObjectPermission._meta.db_table, ["user_id", "content_object_id", "permission_id"], sorted(grants))

    with connection.cursor() as cursor:
        for model in (User, Membership, OrgUnitUserObjectPermission):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    invalidate_scopes()  # bulk inserts and COPY send no signals
    log(f"{len(users)} users, {len(memberships)} memberships, {len(grants)} object grants: "
        f"{time.perf_counter() - started:.2f}s; users per kind: { {k: len(v) for k, v in kinds.items()} }")
    return kinds, len(memberships)


def sample(kinds, per_kind, rng):
    return {kind: rng.sample(pks, min(per_kind, len(pks))) for kind, pks in kinds.items()}


def population_percentile(by_kind, kinds, p):
    """Percentile over the tenant's users from a sample stratified by kind: each timing weighs
    as many users as its kind has, divided by the timings taken for that kind."""
    weighted = sorted((value, len(kinds[kind]) / len(values)) for kind, values in by_kind.items() for value in values)
    total = sum(weight for _value, weight in weighted)
    running = 0.0
    for value, weight in weighted:
        running += weight
        if running >= total * p / 100:
            return value
    return weighted[-1][0]


def fresh_users(pks):
    """New user objects: no memoised scope and no permission caches, as in a new request."""
    from django.contrib.auth import get_user_model

    found = get_user_model().objects.in_bulk(pks)
    return [found[pk] for pk in pks]


def explain_queries(label, queries):
    """EXPLAIN ANALYZE every SELECT that was captured (they are re-run, so caches are warm)."""
    from django.db import connection

    log(f"== {label}: {len(queries)} queries")
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            log(f"-- {query['time']}s {sql[:300]}{' ...' if len(sql) > 300 else ''}")
            if sql.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) " + sql.replace("%", "%%"), [])
                log("\n".join("   " + row[0] for row in cursor.fetchall()))


# --- Scope resolution ------------------------------------------------------------------------

def measure_resolve(picked, rounds):
    """``{"cold": {kind: [ms]}, "cached": {kind: [ms]}}``."""
    from permissions.scope import invalidate_scopes, resolve_scope

    timings = {"cold": {}, "cached": {}}
    for _ in range(rounds):
        invalidate_scopes()
        for phase in ("cold", "cached"):
            for kind, pks in picked.items():
                for user in fresh_users(pks):
                    started = time.perf_counter()
                    resolve_scope(user)
                    timings[phase].setdefault(kind, []).append(ms_since(started))
    return timings


# --- Visible objects -----------------------------------------------------------------------

def guardian_ids(user, **options):
    from guardian.shortcuts import get_objects_for_user

    from org_hierarchy.models import OrgUnit

    return list(get_objects_for_user(user, "org_hierarchy.view_orgunit", klass=OrgUnit, **options).values_list("pk", flat=True))


def selector_ids(user):
    from org_hierarchy.models import OrgUnit
    from permissions.selectors import visible

    return list(visible(user, OrgUnit.objects.all()).values_list("pk", flat=True))


WAYS = {
    "guardian": guardian_ids,
    "guardian_direct": lambda user: guardian_ids(user, use_groups=False, accept_global_perms=False),
    "selector": selector_ids,
}


def measure_visible(picked, rounds):
    """``({way: {kind: [ms]}}, {way: {kind: [objects]}})``, the ways interleaved per user in a rotating
    order; guardian's answer (grants only) must be part of the selector's (scope and grants)."""
    from permissions.scope import invalidate_scopes, resolve_scope

    people = [(kind, pk) for kind, pks in picked.items() for pk in pks]
    for user in fresh_users([pk for _kind, pk in people]):
        resolve_scope(user)  # the selector's scopes are cached, as between two requests
    timings, sizes = {way: {} for way in WAYS}, {way: {} for way in WAYS}
    names = list(WAYS)
    for round_ in range(rounds):
        for i, (kind, pk) in enumerate(people):
            answers = {}
            shift = (i + round_) % len(names)
            for way in names[shift:] + names[:shift]:
                user = fresh_users([pk])[0]
                started = time.perf_counter()
                answers[way] = WAYS[way](user)
                timings[way].setdefault(kind, []).append(ms_since(started))
                sizes[way].setdefault(kind, []).append(len(answers[way]))
            if not set(answers["guardian"]) <= set(answers["selector"]) or set(answers["guardian"]) != set(answers["guardian_direct"]):
                raise AssertionError(f"user {pk}: guardian's grants are not all in the selector's answer")
    timings["selector_cold"] = {}
    for kind, pk in people:
        invalidate_scopes()
        user = fresh_users([pk])[0]
        started = time.perf_counter()
        selector_ids(user)
        timings["selector_cold"].setdefault(kind, []).append(ms_since(started))
    return timings, sizes


# --- Moves under readers ---------------------------------------------------------------------

class Reader(threading.Thread):
    """Keeps doing what a page does (resolve a user's scope, list their visible units) plus a
    consistency probe (units under the moving province, by its current path), on its own
    connection, recording ``(start, end, units seen under the province)``."""

    def __init__(self, schema, user_pks, unit_pk):
        super().__init__(daemon=True)
        self.schema, self.user_pks, self.unit_pk = schema, user_pks, unit_pk
        self.stop, self.ready = threading.Event(), threading.Event()
        self.reads, self.error, self.pid = [], None, None

    def run(self):
        from django.db import connection
        from django_tenants.utils import schema_context

        from org_hierarchy.models import OrgUnit

        table = OrgUnit._meta.db_table
        rng = random.Random(11)
        try:
            with schema_context(self.schema):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
                self.ready.set()
                while not self.stop.is_set():
                    user = fresh_users([rng.choice(self.user_pks)])[0]
                    started = time.perf_counter()
                    selector_ids(user)
                    with connection.cursor() as cursor:
                        cursor.execute(f"SELECT count(*) FROM {table} d, {table} u WHERE u.id = %s AND d.path LIKE u.path || '%%'",
                                       [self.unit_pk])
                        seen = cursor.fetchone()[0]
                    self.reads.append((started, time.perf_counter(), seen))
        except Exception as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.ready.set()
            connection.close()


class LockWatcher(threading.Thread):
    """Samples what the reader's backend is waiting for, every few milliseconds, from a third
    connection: a reader blocked by the move would show up as a "Lock" wait."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.samples, self.error = [], None  # (when, waiting on a lock)

    def run(self):
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.pid])
                    row = cursor.fetchone()
                    self.samples.append((time.perf_counter(), bool(row and row[0] == "Lock")))
                    time.sleep(0.002)
        except Exception as exc:
            self.error = exc
        finally:
            connection.close()


def measure_moves(schema, units, kinds, moves, rng, explain=False):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from org_hierarchy.models import OrgUnit
    from org_hierarchy.services import unit_move
    from permissions.models import Membership
    from permissions.scope import resolve_scope

    admin = get_user_model().objects.get(username=ADMIN_EMAIL)
    province, other_region, size = pick_move(units)
    home = province.parent
    log(f"moving {province.code} {province.name} ({size} units) between regions {home.code} and {other_region.code}")

    # Readers whose scopes the move changes (managers of both regions, people inside the
    # province) and some who are untouched.
    touched = list(Membership.objects.filter(unit__path__startswith=province.path).values_list("user_id", flat=True))
    touched += list(Membership.objects.filter(unit__in=[home, other_region]).values_list("user_id", flat=True))
    readers = rng.sample(touched, min(40, len(touched))) + rng.sample(kinds[ACCOUNT_MANAGER], 20) + kinds["hq_analyst"][:5]
    home_manager, other_manager = (
        Membership.objects.filter(unit=region, role__code="provincial_manager").values_list("user_id", flat=True).first()
        for region in (home, other_region)
    )

    def move(target):
        unit, new_parent = OrgUnit.objects.get(pk=province.pk), OrgUnit.objects.get(pk=target.pk)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            unit_move(actor=admin, unit=unit, new_parent=new_parent)
            ended = time.perf_counter()
        return started, ended, captured.captured_queries

    alone = []  # there and back with nobody else running
    for target in (other_region, home):
        started, ended, captured = move(target)
        alone.append((ended - started) * 1000)
        if explain and target is home:
            log(f"== unit_move: {len(captured)} queries, {sum(float(q['time']) for q in captured) * 1000:.1f} ms "
                f"in the database of {alone[-1]:.1f} ms\n" + "\n".join(f"   {q['time']}s {q['sql'][:160]}" for q in captured))
    log(describe(f"unit_move of {size} units without readers", alone))

    reader = Reader(schema, readers, province.pk)
    reader.start()
    reader.ready.wait()
    watcher = LockWatcher(reader.pid)
    watcher.start()
    time.sleep(0.5)  # reads before the first move: the baseline
    windows, durations, queries = [], [], []
    for i in range(moves):
        started, ended, captured = move(other_region if i % 2 == 0 else home)
        windows.append((started, ended))
        durations.append((ended - started) * 1000)
        queries.append(len(captured))
        if i == 0:  # access follows the tree at once: the old region's manager lost the province
            old, new = (resolve_scope(u).units("org_unit.view") for u in fresh_users([home_manager, other_manager]))
            if province.pk in old or province.pk not in new:
                raise AssertionError("after the move the regions' managers still see the old tree")
        time.sleep(0.25)
    reader.stop.set()
    watcher.stop.set()
    reader.join()
    watcher.join()
    if reader.error is not None or watcher.error is not None:
        raise reader.error or watcher.error
    in_moves = [waiting for when, waiting in watcher.samples if any(a <= when <= b for a, b in windows)]
    lock_waits = sum(waiting for _when, waiting in watcher.samples)
    log(f"reader's backend sampled {len(watcher.samples)} times ({len(in_moves)} during a move): "
        f"{lock_waits} times waiting on a lock")

    during, outside, inside = [], [], 0
    for started, ended, seen in reader.reads[5:]:
        if seen != size:
            raise AssertionError(f"a reader saw {seen} units under the moving province instead of {size}")
        overlaps = any(started < w_end and ended > w_start for w_start, w_end in windows)
        inside += any(w_start < started and ended < w_end for w_start, w_end in windows)
        (during if overlaps else outside).append((ended - started) * 1000)
    log(f"reads that started and ended while a move was running: {inside}")
    log(describe(f"unit_move of {size} units", durations) + f"; queries per move: {queries}")
    log(describe("reader latency outside the moves", outside))
    if during:
        log(describe("reader latency overlapping a move", during))
    return {"durations": durations, "alone": alone, "queries": queries, "during": during, "outside": outside,
            "inside": inside, "size": size, "lock_waits": lock_waits, "lock_samples": len(in_moves)}


# --- Run ------------------------------------------------------------------------------------

def run(args):
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from permissions.scope import invalidate_scopes, resolve_scope

    rng = random.Random(3)
    tenant = scratch_tenant("bench-scopes", admin_email=ADMIN_EMAIL)
    with schema_context(tenant.schema_name):
        started = time.perf_counter()
        units = load_tree(tree_rows(args.units))
        log(f"{len(units)} units: {time.perf_counter() - started:.2f}s")
        kinds, n_memberships = load_people(units, args.users, args.grants, rng)
        s = args.samples

        # Warm the process (imports, the content type and permission caches) before timing.
        for user in fresh_users(kinds[ACCOUNT_MANAGER][:20]):
            for way in WAYS.values():
                way(user)

        resolved = measure_resolve(sample(kinds, s["per_kind"], rng), s["rounds"])
        for phase, by_kind in resolved.items():
            for kind, values in by_kind.items():
                log(describe(f"resolve_scope {phase} {kind}", values))
        counts = {}
        for kind in ("hq_analyst", ACCOUNT_MANAGER):
            user = fresh_users([kinds[kind][0]])[0]
            invalidate_scopes()
            with CaptureQueriesContext(connection) as captured:
                scope = resolve_scope(user)
            counts[kind] = len(captured)
            log(f"cold resolve of a {kind}: {len(captured)} queries, {len(scope.units('org_unit.view'))} units in view scope")
            if args.explain:
                explain_queries(f"cold resolve_scope of a {kind}", captured.captured_queries)

        visible_timings, sizes = measure_visible(sample(kinds, s["visible"], rng), s["rounds"])
        for way, by_kind in visible_timings.items():
            for kind, values in by_kind.items():
                log(describe(f"visible org units via {way} for {kind}", values))
        for way, by_kind in sizes.items():
            log(f"objects returned via {way}: " + ", ".join(f"{kind} {statistics.mean(v):.1f}" for kind, v in by_kind.items()))
        visible_queries = {}
        for kind in ("hq_analyst", ACCOUNT_MANAGER):
            for way in ("guardian", "selector"):
                user = fresh_users([kinds[kind][1]])[0]
                resolve_scope(fresh_users([kinds[kind][1]])[0])
                with CaptureQueriesContext(connection) as captured:
                    WAYS[way](user)
                visible_queries[(way, kind)] = len(captured)
                if args.explain:
                    explain_queries(f"visible org units via {way} for a {kind}", captured.captured_queries)
        log(f"queries per visible call: { {f'{w}/{k}': n for (w, k), n in visible_queries.items()} }")

        moved = measure_moves(tenant.schema_name, units, kinds, s["moves"], rng, explain=args.explain)

    emit("bench_units", len(units), "units")
    emit("bench_users", args.users, "users")
    emit("bench_memberships", n_memberships, "rows")
    emit("bench_grants", args.grants, "rows")
    for phase in ("cached", "cold"):
        by_kind = resolved[phase]
        emit(f"scope_resolve_{phase}_ms", population_percentile(by_kind, kinds, 95), "ms")
        emit(f"scope_resolve_{phase}_p50_ms", population_percentile(by_kind, kinds, 50), "ms")
        emit(f"scope_resolve_{phase}_hq_ms", percentile(by_kind["hq_analyst"], 95), "ms")
        emit(f"scope_resolve_{phase}_max_ms", max(v for values in by_kind.values() for v in values), "ms")
    emit("scope_resolve_cold_queries", max(counts.values()), "queries")
    emit("subtree_move_ms", statistics.median(moved["durations"]), "ms")
    emit("subtree_move_max_ms", max(moved["durations"]), "ms")
    emit("subtree_move_alone_ms", statistics.median(moved["alone"]), "ms")
    emit("subtree_move_units", moved["size"], "units")
    emit("subtree_move_queries", max(moved["queries"]), "queries")
    emit("move_reader_reads_during", len(moved["during"]), "reads")
    emit("move_reader_reads_inside", moved["inside"], "reads")
    emit("move_reader_lock_waits", moved["lock_waits"], "samples")
    emit("move_reader_lock_samples_during", moved["lock_samples"], "samples")
    emit("move_reader_p95_ms", percentile(moved["during"], 95) if moved["during"] else 0.0, "ms")
    emit("move_reader_max_ms", max(moved["during"], default=0.0), "ms")
    emit("move_reader_baseline_max_ms", max(moved["outside"]), "ms")
    emit("move_reader_baseline_p95_ms", percentile(moved["outside"], 95), "ms")
    for way, metric in (("guardian", "visible_guardian"), ("guardian_direct", "visible_guardian_direct"),
                        ("selector", "visible_selector"), ("selector_cold", "visible_selector_cold")):
        by_kind = visible_timings[way]
        emit(f"{metric}_ms", population_percentile(by_kind, kinds, 95), "ms")
        emit(f"{metric}_p50_ms", population_percentile(by_kind, kinds, 50), "ms")
        emit(f"{metric}_hq_ms", percentile(by_kind["hq_analyst"], 95), "ms")
    emit("visible_guardian_queries", max(n for (w, _k), n in visible_queries.items() if w == "guardian"), "queries")
    emit("visible_selector_queries", max(n for (w, _k), n in visible_queries.items() if w == "selector"), "queries")
    for way in ("guardian", "selector"):  # per user of the tenant: each kind weighs its head count
        mean = sum(len(kinds[kind]) * statistics.mean(v) for kind, v in sizes[way].items()) / sum(map(len, kinds.values()))
        emit(f"visible_{way}_objects_mean", mean, "objects")


def main(argv=None):
    args = parse_args(argv)
    with scratch_database("bench_scopes"):
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
