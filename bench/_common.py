"""What the benchmarks share: a scratch database, a scratch tenant, the bench org tree, output.

Every bench runs on a database of its own (``<DATABASE_URL's name>_<suffix>``, or the embedded
server's when DATABASE_URL is unset), created at the start and dropped at the end, so it never
touches your data. Figures go to stdout as one JSON object per line; details go to stderr.
"""
import bisect
import contextlib
import csv
import json
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
ORG_TREE_CSV = DATA_DIR / "cn_org_tree_hq_provinces_cities.csv"
DISTRICTS_CSV = DATA_DIR / "cn_divisions_areas.csv"

# Seven sales regions between HQ and the provinces (by the first digits of the division code), so a
# province can be moved to another region as a real re-org would, and the tree is five levels deep.
LEVELS = [("hq", "HQ", 0), ("region", "Region", 1), ("province", "Province", 2), ("city", "City", 3), ("district", "District", 4)]
REGIONS = [
    ("R-N", "华北大区", ("11", "12", "13", "14", "15")),
    ("R-NE", "东北大区", ("21", "22", "23")),
    ("R-E", "华东大区", ("31", "32", "33", "34", "35", "36", "37")),
    ("R-C", "华中大区", ("41", "42", "43")),
    ("R-S", "华南大区", ("44", "45", "46")),
    ("R-SW", "西南大区", ("50", "51", "52", "53", "54")),
    ("R-NW", "西北大区", ("61", "62", "63", "64", "65")),
]


# --- Output -------------------------------------------------------------------------------

def emit(metric, value, unit, digits=3):
    value = round(value, digits) if isinstance(value, float) else value
    print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


def log(message):
    print(message, file=sys.stderr, flush=True)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def describe(label, values_ms):
    return (f"{label}: n={len(values_ms)} p50={percentile(values_ms, 50):.3f} p95={percentile(values_ms, 95):.3f} "
            f"mean={statistics.mean(values_ms):.3f} max={max(values_ms):.3f} ms")


def ms_since(started):
    return (time.perf_counter() - started) * 1000


# --- Scratch database ---------------------------------------------------------------------

def scratch_url(url, suffix="bench"):
    """The same server, a database of the bench's own."""
    parts = urllib.parse.urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'kam'}_{suffix}"
    return parts._replace(path=f"/{name}").geturl(), name


def _admin_connection(url):
    import psycopg

    parts = urllib.parse.urlsplit(url)
    return psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True)


def create_database(url, name):
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url, name):
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(url, name):
    with _admin_connection(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def sized_suffix(name, customers, default):
    """A scratch database's suffix per size (``name``, or ``name_<customers>`` off the default
    size), so a kept small database and a kept full one can live side by side."""
    return name if customers == default else f"{name}_{customers}"


@contextlib.contextmanager
def scratch_database(suffix="bench", *, keep=False, reuse=False):
    """Point DATABASE_URL at a fresh scratch database for the block, then drop it.

    ``keep``: leave the database (and its tenants' cache keys) behind for a later ``reuse``;
    ``reuse``: open the database a kept run left, when there is one (the block's
    ``services.reused`` says so), instead of making a fresh one."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.base")
    os.environ.setdefault("KAM_LOG_LEVEL", "WARNING")
    from kam.embedded import ensure_services

    services = ensure_services()  # the embedded servers live as long as this object
    base_url = os.environ["DATABASE_URL"]
    url, name = scratch_url(base_url, suffix)
    reused = reuse and database_exists(base_url, name)
    if not reused:
        create_database(base_url, name)
    log(f"scratch database {name}: " + ("reused" if reused else "new") + (", kept afterwards" if keep else ""))
    os.environ["DATABASE_URL"] = url  # read by kam.settings.env at django.setup()
    try:
        yield Scratch(services, reused)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
            if not keep:
                drop_cache_keys(_tenant_schemas)
        if not keep:
            drop_database(base_url, name)


class Scratch:
    """What scratch_database yields: the embedded services (kept alive) and whether the
    database is one a kept run left."""

    def __init__(self, services, reused):
        self.services = services
        self.reused = reused


def setup_django():
    """django.setup() and ``migrate_all`` on the scratch database."""
    import django
    from django.core.management import call_command

    django.setup()
    started = time.perf_counter()
    call_command("migrate_all", verbosity=0, stdout=sys.stderr)  # stdout is for the JSON lines
    log(f"migrate_all on the scratch database: {time.perf_counter() - started:.2f}s")


_tenant_schemas = []  # of the scratch tenants, whose cache keys go with the database


def drop_cache_keys(schemas):
    """Delete the scratch tenants' keys (cached scopes and the like) from the cache's Redis."""
    if not schemas:
        return
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    for schema in schemas:  # django_tenants.cache.make_key puts the schema first
        keys = list(client.scan_iter(match=f"{schema}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    client.close()


def scratch_tenant(slug, admin_email=None, *, existing=False):
    """A tenant cloned from the template, as provisioning makes one (with a tenant admin, a
    superuser of its schema, when ``admin_email`` is given); ``existing``: the one a kept
    scratch database already has, if any (None otherwise)."""
    from tenants import services

    if existing:
        from tenants.models import Tenant

        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is not None:
            _tenant_schemas.append(tenant.schema_name)
        return tenant
    tenant, _password = services.tenant_create(actor="bench", slug=slug, name=f"Bench {slug}", admin_email=admin_email)
    _tenant_schemas.append(tenant.schema_name)
    return tenant


# --- The bench org tree -------------------------------------------------------------------

def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def tree_rows(units=2000):
    """HQ -> 7 regions -> 31 provinces -> 342 cities (the shared CSV) -> districts, ``units`` in all.

    Each city keeps the same share of its real districts (largest remainder, first ones in the
    file), so the tree keeps the real shape at any size. Rows are ``(code, name, parent_code,
    level_code)``, parents first."""
    org = _read_csv(ORG_TREE_CSV)
    districts = _read_csv(DISTRICTS_CSV)
    region_of = {province: code for code, _name, provinces in REGIONS for province in provinces}
    rows = [("HQ", "集团总部", None, "hq")]
    rows += [(code, name, "HQ", "region") for code, name, _provinces in REGIONS]
    rows += [(r["code"], r["name"], region_of[r["code"]], "province") for r in org if r["level"] == "1"]
    rows += [(r["code"], r["name"], r["parent_code"], "city") for r in org if r["level"] == "2"]

    quota = units - len(rows)
    if not 0 <= quota <= len(districts):
        raise ValueError(f"units must be between {len(rows)} and {len(rows) + len(districts)}")
    by_city = {}
    for d in districts:
        by_city.setdefault(d["cityCode"], []).append(d)
    shares = {city: len(ds) * quota / len(districts) for city, ds in by_city.items()}
    keep = {city: int(share) for city, share in shares.items()}
    leftover = quota - sum(keep.values())
    for city in sorted(shares, key=lambda c: (keep[c] - shares[c], c))[:leftover]:
        keep[city] += 1
    for city, ds in by_city.items():
        rows += [(d["code"], d["name"], city, "district") for d in ds[: keep[city]]]
    return rows


def load_tree(rows):
    """Bulk-load ``rows`` (from tree_rows) as OrgLevels and OrgUnits in the current tenant schema.

    Paths are computed here exactly as django-treebeard lays them out (children in code order,
    as ``node_order_by`` wants), so 2,000 units take one insert per level instead of 2,000
    ``add_child`` calls; each unit gets its open parent period as the services would give it.
    Returns ``{code: OrgUnit}``."""
    from django.utils import timezone

    from org_hierarchy.models import OrgLevel, OrgUnit, OrgUnitParentPeriod
    from permissions.scope import invalidate_scopes

    levels = {code: OrgLevel.objects.create(code=code, name=name, rank=rank) for code, name, rank in LEVELS}
    children = {}
    for code, _name, parent, _level in rows:
        children.setdefault(parent, []).append(code)
    by_code = {code: (name, parent, level) for code, name, parent, level in rows}

    units = {}
    todo = [(None, sorted(children[None]))]
    depth = 1
    while todo:
        batch, nxt = [], []
        for parent_code, codes in todo:
            parent = units.get(parent_code)
            for step, code in enumerate(codes, start=1):
                name, _parent, level = by_code[code]
                kids = sorted(children.get(code, []))
                batch.append(OrgUnit(
                    code=code, name=name, level=levels[level], parent=parent, depth=depth, numchild=len(kids),
                    path=OrgUnit._get_path(parent.path if parent else None, depth, step),
                ))
                if kids:
                    nxt.append((code, kids))
        for unit in OrgUnit.objects.bulk_create(batch, batch_size=1000):
            units[unit.code] = unit
        todo, depth = nxt, depth + 1

    problems = OrgUnit.objects.find_problems()
    if any(problems):
        raise AssertionError(f"the bulk-loaded tree is not what treebeard expects: {problems}")
    now = timezone.now()
    OrgUnitParentPeriod.objects.bulk_create(
        [OrgUnitParentPeriod(unit=u, parent_id=u.parent_id, valid_from=now) for u in units.values()], batch_size=1000
    )
    invalidate_scopes()  # bulk inserts send no signals
    return units


def subtree_sizes(units):
    """``{code: units in its subtree, itself included}`` from the loaded paths."""
    paths = sorted(u.path for u in units.values())
    return {u.code: bisect.bisect_left(paths, u.path + "~") - bisect.bisect_left(paths, u.path) for u in units.values()}


def pick_move(units, target_size=50):
    """A province whose subtree is closest to ``target_size`` units, and another region to move it to."""
    sizes = subtree_sizes(units)
    provinces = [u for u in units.values() if u.level.code == "province"]
    province = min(provinces, key=lambda u: (abs(sizes[u.code] - target_size), u.code))
    regions = sorted(u.code for u in units.values() if u.level.code == "region")
    other = regions[(regions.index(province.parent.code) + 1) % len(regions)]
    return province, units[other], sizes[province.code]
