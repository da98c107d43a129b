"""The roll-up engine: set-based SQL that fills the summary tables of reporting/models.py.

Own rows (reporting/own.py) come straight from the archive (customers, their history,
subscriptions, billing records); subtree rows are computed bottom-up, one statement per tree
depth, as own + the children's subtree rows. The incremental refresh and the full recompute run
exactly the same statements, the first restricted to some units and months, the second over every
unit and the whole window, so both give identical rows. A full recompute builds shadow tables and
swaps them in (``create_shadow``, ``swap``). Definitions: docs/reporting.md.
"""
import contextlib
import datetime
import re
import time
from dataclasses import dataclass

from django.conf import settings

from org_hierarchy.models import OrgUnit

from . import models, own

# Measures of reporting.models.Measures, by how they add up over months (reporting/own.py).
STOCK, FLOWS, BILLING, PRODUCT_MEASURES = own.STOCK, own.FLOWS, own.BILLING, own.PRODUCT_MEASURES
MEASURES = STOCK + FLOWS + BILLING


@dataclass(frozen=True)
class Family:
    """Summary tables of one kind: own rows, and their subtree roll-up (None: not rolled up)."""

    name: str
    own: type
    subtree: type | None
    dims: tuple
    measures: tuple

    @property
    def key(self):
        return ("unit_id", "month", *self.dims)

    @property
    def columns(self):
        return (*self.key, *self.measures)

    @property
    def tables(self):
        return [m._meta.db_table for m in (self.own, self.subtree) if m is not None]


MAIN = Family("main", models.UnitMonth, models.SubtreeMonth, ("grade", "industry"), MEASURES)
PRODUCTS = Family("products", models.UnitProductMonth, models.SubtreeProductMonth, ("product_id",), PRODUCT_MEASURES)
GROUPS = Family("groups", models.GroupMonth, None, ("group_id",), MEASURES)
FAMILIES = (MAIN, PRODUCTS, GROUPS)


# --- The window of months ---------------------------------------------------------------

def add_months(month, n):
    index = month.year * 12 + month.month - 1 + n
    return datetime.date(index // 12, index % 12 + 1, 1)


def window(today=None):
    """``(first, last)``: the months kept in the summary tables, the current one last
    (``KAM_ROLLUP_MONTHS`` of them, 24 by default; today in the project's time zone)."""
    from django.utils import timezone

    today = today or timezone.localdate()
    last = today.replace(day=1)
    return add_months(last, 1 - settings.KAM_ROLLUP_MONTHS), last


def months_between(first, last):
    months, month = [], first
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


# --- Own rows -------------------------------------------------------------------------------

class Steps(dict):
    """Seconds spent per named step (``with steps("own"): ...``), for logs and benchmarks."""

    @contextlib.contextmanager
    def __call__(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0) + time.perf_counter() - started, 3)


def insert_own(cursor, tables, params, units=None, steps=None):
    """Own rows of ``units`` (None: every unit) for the months in ``params`` into ``tables``
    (``{family name: table}``: the live tables, or a recompute's shadows). Returns rows per table."""
    steps = steps if steps is not None else Steps()
    with steps("work_tables"):
        own.prepare(cursor, params, units)
    with steps("own_main"):
        main = own.insert_measures(cursor, tables[MAIN.name], MAIN.dims, params)
    with steps("own_groups"):
        groups = own.insert_measures(cursor, tables[GROUPS.name], GROUPS.dims, params, groups_only=True)
    with steps("own_products"):
        products = own.insert_products(cursor, tables[PRODUCTS.name], params)
    own.drop(cursor)
    return {tables[MAIN.name]: main, tables[GROUPS.name]: groups, tables[PRODUCTS.name]: products}


# --- Subtree rows ----------------------------------------------------------------------------

# Only units with children have subtree rows: a leaf's subtree is its own rows (most units are
# leaves, so this halves what is written). A unit's subtree = its own rows + the subtree rows of
# its children that have children + the own rows of its leaf children.
SUBTREE_SQL = """
WITH kids AS (
    SELECT u.id, u.parent_id, EXISTS (SELECT FROM {orgunit} g WHERE g.parent_id = u.id) AS internal
      FROM {orgunit} u WHERE u.parent_id = ANY(%(units)s::bigint[])
)
INSERT INTO {subtree} ({columns})
SELECT target, month, {dims}, {sums} FROM (
    SELECT o.unit_id AS target, o.month, {dims_o}, {measures_o} FROM {own} o
     WHERE o.unit_id = ANY(%(units)s::bigint[]) AND o.month = ANY(%(months)s::date[])
    UNION ALL
    SELECT kids.parent_id, s.month, {dims_s}, {measures_s} FROM {subtree} s JOIN kids ON kids.id = s.unit_id AND kids.internal
     WHERE s.month = ANY(%(months)s::date[])
    UNION ALL
    SELECT kids.parent_id, o.month, {dims_o}, {measures_o} FROM {own} o JOIN kids ON kids.id = o.unit_id AND NOT kids.internal
     WHERE o.month = ANY(%(months)s::date[])
) x
GROUP BY target, month, {dims}
"""


def insert_subtree(cursor, family, own_table, subtree_table, units, months):
    """Subtree rows of ``units`` (all at one depth, all with children, whose children's rows are
    current) for ``months``."""
    dims = ", ".join(family.dims)
    sql = SUBTREE_SQL.format(
        subtree=subtree_table, own=own_table, orgunit=OrgUnit._meta.db_table,
        columns=", ".join(family.columns), dims=dims,
        sums=", ".join(f"sum({m})" for m in family.measures),
        dims_o=", ".join(f"o.{d}" for d in family.dims), measures_o=", ".join(f"o.{m}" for m in family.measures),
        dims_s=", ".join(f"s.{d}" for d in family.dims), measures_s=", ".join(f"s.{m}" for m in family.measures),
    )
    cursor.execute(sql, {"units": list(units), "months": list(months)})
    return cursor.rowcount


def units_by_depth(unit_ids=None):
    """``[(depth, [units with children], [leaves])]``, deepest first: every unit, or ``unit_ids``
    and their ancestors."""
    units = OrgUnit.objects.order_by()
    if unit_ids is not None:
        paths = set(OrgUnit.objects.filter(pk__in=list(unit_ids)).values_list("path", flat=True))
        step = OrgUnit.steplen
        prefixes = {path[:end] for path in paths for end in range(step, len(path) + 1, step)}
        units = units.filter(path__in=prefixes)
    parents = set(OrgUnit.objects.filter(parent__isnull=False).order_by().values_list("parent_id", flat=True).distinct())
    by_depth = {}
    for pk, depth in units.values_list("pk", "depth"):
        internal, leaves = by_depth.setdefault(depth, ([], []))
        (internal if pk in parents else leaves).append(pk)
    return [(depth, internal, leaves) for depth, (internal, leaves) in sorted(by_depth.items(), reverse=True)]


def params(first, last, months):
    return {"first": first, "last": last, "months": list(months), "tz": settings.TIME_ZONE}


# --- Swapping in freshly built tables -------------------------------------------------------

SHADOW = "{}__next"

INDEXES = """
SELECT i.relname, x.indisunique, regexp_replace(pg_get_indexdef(i.oid), '^.* USING ', ''), c.conname
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
  LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
 WHERE x.indrelid = %s::regclass
"""


def _indexes(cursor, table):
    cursor.execute(INDEXES, [table])
    return {(unique, definition): (name, constraint) for name, unique, definition, constraint in cursor.fetchall()}


def create_shadow(cursor, table):
    """An empty copy of ``table`` (columns and constraints, no indexes: ``index_shadow`` builds
    them once it is filled, which is faster than keeping them up to date row by row)."""
    shadow = SHADOW.format(table)
    cursor.execute(f"DROP TABLE IF EXISTS {shadow}")
    cursor.execute(f"CREATE TABLE {shadow} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES)")
    return shadow


def index_shadow(cursor, table):
    """Give the filled shadow of ``table`` the indexes and primary key of ``table`` (under
    temporary names, see ``swap``)."""
    shadow = SHADOW.format(table)
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), c.conname, pg_get_constraintdef(c.oid)"
        "  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        "  LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid"
        " WHERE x.indrelid = %s::regclass", [table])
    for name, definition, constraint, constraint_definition in cursor.fetchall():
        if constraint:
            cursor.execute(f'ALTER TABLE {shadow} ADD CONSTRAINT "{constraint}__next" {constraint_definition}')
        else:
            unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
            cursor.execute(f'CREATE {unique}INDEX "{name}__next" ON {shadow} USING {definition.split(" USING ", 1)[1]}')


def swap(cursor, table):
    """Replace ``table`` by its filled shadow, giving the shadow's indexes and constraints the
    live names (so later migrations find them). Holds an exclusive lock on ``table`` until the
    transaction ends: readers wait for the commit, a few milliseconds."""
    shadow = SHADOW.format(table)
    live = _indexes(cursor, table)
    built = _indexes(cursor, shadow)
    if set(live) != set(built):
        raise RuntimeError(f"{shadow} does not have the indexes of {table}")
    cursor.execute(f"DROP TABLE {table}")
    cursor.execute(f"ALTER TABLE {shadow} RENAME TO {table}")
    for key, (name, constraint) in live.items():
        new_name, new_constraint = built[key]
        if constraint:
            cursor.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{new_constraint}" TO "{constraint}"')
        else:
            cursor.execute(f'ALTER INDEX "{new_name}" RENAME TO "{name}"')


_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
assert all(_IDENT.match(t) for f in FAMILIES for t in f.tables)
