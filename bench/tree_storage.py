"""Org tree storage: django-treebeard materialised path (our OrgUnit) vs. a PostgreSQL ltree column.

    .venv/bin/python -m bench.tree_storage [--scale small|full] [--accounts N] [--units N]

On a scratch tenant, loads the same tree twice (HQ -> 7 regions -> 31 provinces -> 342 cities ->
districts, 2,000 units by default): as OrgUnit rows (path LIKE 'P%' on a varchar_pattern_ops
index, plus the parent FK) and as a plain table with an ``ltree`` path under a GiST index (``<@``).
Both keep the same unit ids; one accounts table (id, unit_id) serves both. Measured alternately in
the same run: "all unit ids under X" for provinces and cities, a province-wide account count
(unit_id IN the subtree) and moving a province of about 50 units to another region and back.
Prints one JSON object per line on stdout; details and query plans go to stderr.
"""
import argparse
import random
import statistics
import sys
import time

from bench._common import (
    describe, emit, load_tree, log, ms_since, percentile, pick_move, scratch_database, scratch_tenant, setup_django,
    tree_rows,
)

ACCOUNTS = {"small": 200_000, "full": 1_000_000}
LTREE = "bench_ltree_unit"
ACCOUNT = "bench_account"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.tree_storage", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(ACCOUNTS), default="small")
    parser.add_argument("--accounts", type=int, help="account rows (default 200,000 small, 1,000,000 full)")
    parser.add_argument("--units", type=int, default=2000, help="org units (default 2,000)")
    parser.add_argument("--lookups", type=int, default=300, help="timed subtree lookups per kind and storage")
    parser.add_argument("--moves", type=int, default=10, help="timed moves per storage (there and back)")
    args = parser.parse_args(argv)
    args.accounts = ACCOUNTS[args.scale] if args.accounts is None else args.accounts
    return args


# --- Set-up -------------------------------------------------------------------------------

def build_ltree(cursor, table):
    """The same units, ids and parents in a plain table with an ltree path of unit ids."""
    cursor.execute("CREATE EXTENSION IF NOT EXISTS ltree SCHEMA public")
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'ltree'")
    version = cursor.fetchone()[0]
    cursor.execute(f"""
        CREATE TABLE {LTREE} (id integer PRIMARY KEY, parent_id integer, code varchar(64) NOT NULL, path ltree NOT NULL);
        WITH RECURSIVE t AS (
            SELECT id, parent_id, code, id::text::ltree AS path FROM {table} WHERE parent_id IS NULL
            UNION ALL
            SELECT c.id, c.parent_id, c.code, t.path || c.id::text FROM {table} c JOIN t ON c.parent_id = t.id
        )
        INSERT INTO {LTREE} SELECT * FROM t;
        CREATE INDEX {LTREE}_path ON {LTREE} USING gist (path);
        ANALYZE {LTREE};
    """)
    return version


def build_accounts(cursor, unit_ids, count):
    """``count`` accounts spread at random (seeded) over ``unit_ids``, indexed by unit."""
    cursor.execute(f"""
        CREATE TABLE {ACCOUNT} (id bigint PRIMARY KEY, unit_id integer NOT NULL);
        SELECT setseed(0.42);
    """)
    cursor.execute(
        f"INSERT INTO {ACCOUNT} SELECT g, (%s::integer[])[1 + floor(random() * %s)::integer] FROM generate_series(1, %s) g",
        [unit_ids, len(unit_ids), count],
    )
    cursor.execute(f"CREATE INDEX {ACCOUNT}_unit ON {ACCOUNT} (unit_id)")
    cursor.execute(f"VACUUM ANALYZE {ACCOUNT}")  # visibility map: counts are index-only scans


# --- Queries (the node's path is known, as it is to the app: the unit row is at hand) -----

def mp_subtree(table):
    return f"SELECT id FROM {table} WHERE path LIKE %s", lambda node: [node["mp"] + "%"]


def lt_subtree():
    return f"SELECT id FROM {LTREE} WHERE path <@ %s::ltree", lambda node: [node["lt"]]


def mp_count(table):
    return (f"SELECT count(*) FROM {ACCOUNT} WHERE unit_id IN (SELECT id FROM {table} WHERE path LIKE %s)",
            lambda node: [node["mp"] + "%"])


def lt_count():
    return (f"SELECT count(*) FROM {ACCOUNT} WHERE unit_id IN (SELECT id FROM {LTREE} WHERE path <@ %s::ltree)",
            lambda node: [node["lt"]])


def ids_count():
    """The app's way: the ids are already known (a user's cached scope), the tree is not read."""
    return f"SELECT count(*) FROM {ACCOUNT} WHERE unit_id = ANY(%s)", lambda node: [node["ids"]]


def timed(cursor, sql, params):
    started = time.perf_counter()
    cursor.execute(sql, params)
    rows = cursor.fetchall()
    return ms_since(started), rows


def explain(cursor, label, sql, params):
    cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
    log(f"-- {label}\n" + "\n".join("   " + row[0] for row in cursor.fetchall()))


def race(cursor, ways, nodes, rounds, check):
    """Run each way on each node, interleaved, ``rounds`` times; ``{way: [ms]}``. ``check`` compares
    the answers of the ways on a node (they must agree)."""
    timings = {name: [] for name in ways}
    for node in nodes * rounds:
        answers = {}
        for name, (sql, params) in ways.items():
            ms, rows = timed(cursor, sql, params(node))
            timings[name].append(ms)
            answers[name] = rows
        check(node, answers)
    return timings


# --- Moves ----------------------------------------------------------------------------------

def mp_move(unit_pk, target_pk):
    """Treebeard's move (one UPDATE of the subtree's paths, siblings shifted if needed) plus the
    parent FK, committed."""
    from django.db import transaction

    from org_hierarchy.models import OrgUnit

    started = time.perf_counter()
    with transaction.atomic():
        unit, target = OrgUnit.objects.get(pk=unit_pk), OrgUnit.objects.get(pk=target_pk)
        OrgUnit.objects.move(unit, target, "sorted-child")
        OrgUnit.objects.filter(pk=unit_pk).update(parent=target_pk)
    return ms_since(started)


def lt_move(cursor, unit_pk, target_pk):
    """One UPDATE re-rooting the subtree's paths, plus the parent FK, committed."""
    from django.db import transaction

    started = time.perf_counter()
    with transaction.atomic():
        cursor.execute(f"""
            UPDATE {LTREE} SET path = (SELECT path FROM {LTREE} WHERE id = %(target)s) || subpath(path, nlevel(u.upath) - 1)
            FROM (SELECT path AS upath FROM {LTREE} WHERE id = %(unit)s) u
            WHERE path <@ u.upath
        """, {"unit": unit_pk, "target": target_pk})
        cursor.execute(f"UPDATE {LTREE} SET parent_id = %s WHERE id = %s", [target_pk, unit_pk])
    return ms_since(started)


def check_same_tree(cursor, table):
    """Both storages agree on every unit's subtree after the moves."""
    cursor.execute(f"""
        SELECT count(*) FROM {table} m JOIN {LTREE} l USING (id)
        WHERE m.parent_id IS DISTINCT FROM l.parent_id
           OR (SELECT count(*) FROM {table} d WHERE d.path LIKE m.path || '%%')
              <> (SELECT count(*) FROM {LTREE} d WHERE d.path <@ l.path)
    """, [])
    differing = cursor.fetchone()[0]
    if differing:
        raise AssertionError(f"{differing} units differ between the two storages after the moves")


# --- Run ------------------------------------------------------------------------------------

def run(args):
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from org_hierarchy.models import OrgUnit

    tenant = scratch_tenant("bench-tree")
    table = OrgUnit._meta.db_table
    with schema_context(tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        log(f"PostgreSQL {cursor.fetchone()[0]}")
        started = time.perf_counter()
        units = load_tree(tree_rows(args.units))
        cursor.execute(f"ANALYZE {table}")
        version = build_ltree(cursor, table)
        log(f"{len(units)} units as OrgUnit and in {LTREE} (ltree {version}): {time.perf_counter() - started:.2f}s")
        started = time.perf_counter()
        owners = [u.pk for u in units.values() if u.level.code in ("city", "district")]
        build_accounts(cursor, owners, args.accounts)
        log(f"{args.accounts} accounts over {len(owners)} cities and districts: {time.perf_counter() - started:.2f}s")

        cursor.execute(f"SELECT m.id, m.path, l.path::text FROM {table} m JOIN {LTREE} l USING (id)")
        paths = {pk: (mp, lt) for pk, mp, lt in cursor.fetchall()}

        def node(unit):
            mp, lt = paths[unit.pk]
            return {"code": unit.code, "mp": mp, "lt": lt, "ids": [pk for pk, (p, _l) in paths.items() if p.startswith(mp)]}

        rng = random.Random(7)
        provinces = [node(u) for u in units.values() if u.level.code == "province"]
        cities = [node(u) for u in units.values() if u.level.code == "city"]
        rng.shuffle(provinces)
        rng.shuffle(cities)

        def same_ids(n, answers):
            got = {name: sorted(r[0] for r in rows) for name, rows in answers.items()}
            if any(ids != sorted(n["ids"]) for ids in got.values()):
                raise AssertionError(f"subtree of {n['code']} differs: { {k: len(v) for k, v in got.items()} }")

        def same_count(n, answers):
            counts = {name: rows[0][0] for name, rows in answers.items()}
            if len(set(counts.values())) != 1:
                raise AssertionError(f"account count under {n['code']} differs: {counts}")

        subtree = {"mp": mp_subtree(table), "ltree": lt_subtree()}
        for label, sample in (("province", provinces), ("city", cities)):
            explain(cursor, f"mp subtree of a {label}", subtree["mp"][0], subtree["mp"][1](sample[0]))
            explain(cursor, f"ltree subtree of a {label}", subtree["ltree"][0], subtree["ltree"][1](sample[0]))
        race(cursor, subtree, provinces + cities, 2, same_ids)  # warm-up
        lookups = {}
        for label, sample in (("province", provinces), ("city", cities)):
            rounds = -(-args.lookups // len(sample))
            timings = race(cursor, subtree, sample, rounds, same_ids)
            for way, values in timings.items():
                lookups[(way, label)] = values[: args.lookups]
                log(describe(f"{way} subtree ids of a {label}", lookups[(way, label)]))

        counting = {"mp": mp_count(table), "ltree": lt_count(), "ids": ids_count()}
        for way, (sql, params) in counting.items():
            explain(cursor, f"{way} account count of a province", sql, params(provinces[0]))
        race(cursor, counting, provinces[:5], 1, same_count)  # warm-up
        counts = race(cursor, counting, provinces, 3, same_count)
        for way, values in counts.items():
            log(describe(f"{way} account count of a province", values))

        province, region, size = pick_move(units)
        home = province.parent.pk
        log(f"moving {province.code} {province.name} ({size} units) between regions {province.parent.code} and {region.code}")
        moves = {"mp": [], "ltree": []}
        for i in range(args.moves):
            target = region.pk if i % 2 == 0 else home
            moves["mp"].append(mp_move(province.pk, target))
            moves["ltree"].append(lt_move(cursor, province.pk, target))
        for way, values in moves.items():
            log(describe(f"{way} move of {size} units", values))
        target = home if args.moves % 2 else region.pk  # one more move each, untimed, counting queries
        with CaptureQueriesContext(connection) as queries:
            mp_move(province.pk, target)
        lt_move(cursor, province.pk, target)
        log(f"mp move: {len(queries)} queries:\n" + "\n".join(f"   {q['time']}s {q['sql'][:200]}" for q in queries))
        check_same_tree(cursor, table)
        problems = OrgUnit.objects.find_problems()
        if any(problems):
            raise AssertionError(f"treebeard reports problems after the moves: {problems}")

    emit("tree_units", len(units), "units")
    emit("tree_accounts", args.accounts, "rows")
    for way, prefix in (("mp", "tree_mp"), ("ltree", "tree_ltree")):
        for label in ("province", "city"):
            values = lookups[(way, label)]
            emit(f"{prefix}_subtree_{label}_p50_ms", percentile(values, 50), "ms")
            emit(f"{prefix}_subtree_{label}_p95_ms", percentile(values, 95), "ms")
        emit(f"{prefix}_subtree_p95_ms", percentile(lookups[(way, "province")] + lookups[(way, "city")], 95), "ms")
        emit(f"{prefix}_count_province_ms", statistics.median(counts[way]), "ms")
        emit(f"{prefix}_count_province_p95_ms", percentile(counts[way], 95), "ms")
        emit(f"{prefix}_move_ms", statistics.median(moves[way]), "ms")
        emit(f"{prefix}_move_max_ms", max(moves[way]), "ms")
    emit("tree_ids_count_province_ms", statistics.median(counts["ids"]), "ms")
    emit("tree_move_subtree_units", size, "units")


def main(argv=None):
    args = parse_args(argv)
    with scratch_database("bench_tree"):
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
