"""The roll-up engine: set-based SQL that fills the summary tables of reporting/models.py.

One statement per table computes the ``own`` rows of a set of units and months straight from the
archive (customers, their history, subscriptions, billing records); one statement per tree depth
computes ``subtree`` rows bottom-up as own + the children's subtree rows. The incremental refresh
and the full recompute run exactly the same statements, the first restricted to some units and
months, the second over every unit and the whole window, so both give identical rows.

Stock figures (customers, statuses, subscriptions) are running sums of monthly changes (a
customer counts from the month it was created, a churn moves it between statuses in its churn
month, a subscription counts from its start month to its end month), so a customer or a
subscription is read once, not once per month. Definitions: docs/reporting.md.
"""
import datetime
import re
from dataclasses import dataclass

from django.conf import settings

from key_accounts.models import BillingRecord, Customer, Subscription
from org_hierarchy.models import OrgUnit

from . import models

# Measures of reporting.models.Measures, in table order, by how they add up over months.
STOCK = ("customers", "prospects", "active", "abnormal", "churned", "enterprises", "governments", "institutions",
         "individuals", "national", "subscriptions")
FLOWS = ("new_customers", "lost_customers")
BILLING = ("billed_customers", "revenue", "arrears", "discount")
MEASURES = STOCK + FLOWS + BILLING
PRODUCT_MEASURES = ("holders", "subscriptions", "quantity", "monthly_fee")


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

def _tables():
    return {
        "customer": Customer._meta.db_table,
        "event": Customer.pgh_event_model._meta.db_table,  # its history (pghistory snapshots)
        "subscription": Subscription._meta.db_table,
        "billing": BillingRecord._meta.db_table,
        "orgunit": OrgUnit._meta.db_table,
    }


def _unit_filter(column, units):
    return "TRUE" if units is None else f"{column} = ANY(%(units)s::bigint[])"


# Common head: the months of the window and the customers of the units asked for. A churned
# customer's churn month comes from its history (the first snapshot of its current churned run;
# its creation when there is no history); "live" is its status before it churned.
CUSTOMERS = """
months AS (SELECT m::date AS month FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') AS m),
cust AS MATERIALIZED (
    SELECT c.id, c.org_unit_id AS unit_id, {dim_exprs}, c.kind, c.is_national_key_account AS national,
           c.created_at, c.status = 'churned' AS is_churned,
           CASE WHEN c.status = 'churned' THEN 'active' ELSE c.status END AS live,
           date_trunc('month', c.created_at AT TIME ZONE %(tz)s)::date AS born
      FROM {customer} c
     WHERE {unit_filter} AND c.created_at < ((%(last)s::date + interval '1 month')::timestamp AT TIME ZONE %(tz)s)
           {extra}
),
churn AS (
    SELECT e.pgh_obj_id AS id, min(e.pgh_created_at) AS at
      FROM {event} e JOIN cust ON cust.id = e.pgh_obj_id AND cust.is_churned
     WHERE e.status = 'churned'
       AND NOT EXISTS (SELECT FROM {event} o WHERE o.pgh_obj_id = e.pgh_obj_id AND o.status <> 'churned'
                                               AND o.pgh_created_at > e.pgh_created_at)
     GROUP BY e.pgh_obj_id
),
cl AS (
    SELECT cust.*, greatest(born, %(first)s::date) AS since,
           CASE WHEN is_churned
                THEN date_trunc('month', coalesce(churn.at, cust.created_at) AT TIME ZONE %(tz)s)::date END AS lost
      FROM cust LEFT JOIN churn USING (id)
)"""

# Subscriptions of those customers that overlap the window, as whole months [a, z].
SUBSCRIPTIONS = """
subs AS (
    SELECT cust.unit_id, {dims_of_cust}, s.customer_id, s.product_id, s.quantity, s.monthly_fee,
           greatest(date_trunc('month', s.start_date)::date, %(first)s::date) AS a,
           coalesce(date_trunc('month', s.end_date)::date, 'infinity'::date) AS z
      FROM {subscription} s JOIN cust ON cust.id = s.customer_id
     WHERE s.start_date < %(last)s::date + interval '1 month' AND (s.end_date IS NULL OR s.end_date >= %(first)s::date)
)"""

MEASURES_SQL = """
WITH {customers},
{subscriptions},
changes AS (
    -- A customer enters the stock in its first month of the window, churned already or not.
    SELECT unit_id, {dims}, since AS month, 1 AS customers,
           (NOT gone AND live = 'prospect')::int AS prospects, (NOT gone AND live = 'active')::int AS active,
           (NOT gone AND live = 'abnormal')::int AS abnormal, gone::int AS churned,
           (kind = 'enterprise')::int AS enterprises, (kind = 'government')::int AS governments,
           (kind = 'institution')::int AS institutions, (kind = 'individual')::int AS individuals,
           national::int AS national, 0 AS subscriptions,
           (born >= %(first)s::date)::int AS new_customers, (lost IS NOT NULL AND lost = since)::int AS lost_customers
      FROM (SELECT cl.*, lost IS NOT NULL AND lost <= since AS gone FROM cl) x
    UNION ALL  -- ... and moves to "churned" in its churn month.
    SELECT unit_id, {dims}, lost, 0, -(live = 'prospect')::int, -(live = 'active')::int, -(live = 'abnormal')::int, 1,
           0, 0, 0, 0, 0, 0, 0, 1
      FROM cl WHERE lost > since AND lost <= %(last)s::date
    UNION ALL
    SELECT unit_id, {dims}, a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 FROM subs
    UNION ALL
    SELECT unit_id, {dims}, (z + interval '1 month')::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0
      FROM subs WHERE z < %(last)s::date
),
monthly AS (
    SELECT unit_id, {dims}, month, {sum_changes} FROM changes GROUP BY unit_id, {dims}, month
),
cells AS (SELECT unit_id, {dims}, min(month) AS since FROM monthly GROUP BY unit_id, {dims}),
stock AS (
    SELECT * FROM (
        SELECT cells.unit_id, {cells_dims}, months.month, {running}, {flows}
          FROM cells JOIN months ON months.month >= cells.since
          LEFT JOIN monthly ON monthly.unit_id = cells.unit_id AND {join_dims} AND monthly.month = months.month
        WINDOW w AS (PARTITION BY cells.unit_id, {cells_dims} ORDER BY months.month)
    ) s WHERE month = ANY(%(months)s::date[])
),
bill AS (
    SELECT cust.unit_id, {dims_of_cust}, b.month, count(DISTINCT b.customer_id) AS billed_customers,
           sum(b.revenue) AS revenue, sum(b.arrears) AS arrears, sum(b.discount) AS discount
      FROM {billing} b JOIN cust ON cust.id = b.customer_id
     WHERE b.month = ANY(%(months)s::date[])
     GROUP BY cust.unit_id, {dims_of_cust}, b.month
)
SELECT unit_id, month, {dims}, {final}
  FROM stock FULL JOIN bill USING (unit_id, month, {dims})
 WHERE coalesce(stock.customers, 0) + coalesce(stock.subscriptions, 0) + coalesce(stock.new_customers, 0)
       + coalesce(stock.lost_customers, 0) > 0 OR bill.unit_id IS NOT NULL
"""

PRODUCTS_SQL = """
WITH months AS (SELECT m::date AS month FROM generate_series(%(first)s::date, %(last)s::date, interval '1 month') AS m),
cust AS MATERIALIZED (
    SELECT c.id, c.org_unit_id AS unit_id FROM {customer} c
     WHERE {unit_filter} AND c.created_at < ((%(last)s::date + interval '1 month')::timestamp AT TIME ZONE %(tz)s)
),
{subscriptions},
-- A customer holds a product over the union of its subscriptions of it: islands of months.
marked AS (
    SELECT unit_id, customer_id, product_id, a, z,
           CASE WHEN a <= (max(z) OVER (PARTITION BY customer_id, product_id ORDER BY a, z
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + interval '1 month')::date
                THEN 0 ELSE 1 END AS starts
      FROM subs
),
islands AS (
    SELECT unit_id, product_id, min(a) AS a, max(z) AS z FROM (
        SELECT marked.*, sum(starts) OVER (PARTITION BY customer_id, product_id ORDER BY a, z ROWS UNBOUNDED PRECEDING) AS island
          FROM marked) x
     GROUP BY unit_id, customer_id, product_id, island
),
changes AS (
    SELECT unit_id, product_id, a AS month, 0 AS holders, 1 AS subscriptions, quantity::bigint AS quantity,
           monthly_fee FROM subs
    UNION ALL
    SELECT unit_id, product_id, (z + interval '1 month')::date, 0, -1, -quantity::bigint, -monthly_fee
      FROM subs WHERE z < %(last)s::date
    UNION ALL
    SELECT unit_id, product_id, a, 1, 0, 0, 0 FROM islands
    UNION ALL
    SELECT unit_id, product_id, (z + interval '1 month')::date, -1, 0, 0, 0 FROM islands WHERE z < %(last)s::date
),
monthly AS (
    SELECT unit_id, product_id, month, sum(holders) AS holders, sum(subscriptions) AS subscriptions,
           sum(quantity) AS quantity, sum(monthly_fee) AS monthly_fee
      FROM changes GROUP BY unit_id, product_id, month
),
cells AS (SELECT unit_id, product_id, min(month) AS since FROM monthly GROUP BY unit_id, product_id)
SELECT unit_id, month, product_id, holders, subscriptions, quantity, monthly_fee FROM (
    SELECT cells.unit_id, months.month, cells.product_id,
           sum(coalesce(monthly.holders, 0)) OVER w AS holders,
           sum(coalesce(monthly.subscriptions, 0)) OVER w AS subscriptions,
           sum(coalesce(monthly.quantity, 0)) OVER w AS quantity,
           sum(coalesce(monthly.monthly_fee, 0)) OVER w AS monthly_fee
      FROM cells JOIN months ON months.month >= cells.since
      LEFT JOIN monthly ON monthly.unit_id = cells.unit_id AND monthly.product_id = cells.product_id
                       AND monthly.month = months.month
    WINDOW w AS (PARTITION BY cells.unit_id, cells.product_id ORDER BY months.month)
) s
 WHERE month = ANY(%(months)s::date[]) AND (holders > 0 OR subscriptions > 0)
"""

DIM_EXPRS = {
    "grade": "c.grade",
    "industry": "c.industry",
    "group_id": "CASE WHEN c.is_group THEN c.id ELSE c.group_id END",
}
EXTRA = {GROUPS.name: "AND (c.is_group OR c.group_id IS NOT NULL)"}


def own_select(family, units=None):
    """The SELECT of ``family``'s own rows (columns in ``family.columns`` order) for ``units``
    (None: every unit) and the months in the ``months`` parameter."""
    t = _tables()
    unit_filter = _unit_filter("c.org_unit_id", units)
    if family is PRODUCTS:
        subscriptions = SUBSCRIPTIONS.format(dims_of_cust="NULL AS none", **t)
        return PRODUCTS_SQL.format(unit_filter=unit_filter, subscriptions=subscriptions, **t)
    dims = ", ".join(family.dims)
    customers = CUSTOMERS.format(
        dim_exprs=", ".join(f"{DIM_EXPRS[d]} AS {d}" for d in family.dims), unit_filter=unit_filter,
        extra=EXTRA.get(family.name, ""), **t,
    )
    dims_of_cust = ", ".join(f"cust.{d}" for d in family.dims)
    running_cols = STOCK
    return MEASURES_SQL.format(
        customers=customers,
        subscriptions=SUBSCRIPTIONS.format(dims_of_cust=dims_of_cust, **t),
        dims=dims,
        dims_of_cust=dims_of_cust,
        cells_dims=", ".join(f"cells.{d}" for d in family.dims),
        join_dims=" AND ".join(f"monthly.{d} = cells.{d}" for d in family.dims),
        sum_changes=", ".join(f"sum({m}) AS {m}" for m in STOCK + FLOWS),
        running=", ".join(f"sum(coalesce(monthly.{m}, 0)) OVER w AS {m}" for m in running_cols),
        flows=", ".join(f"coalesce(monthly.{m}, 0) AS {m}" for m in FLOWS),
        final=", ".join(
            [f"coalesce(stock.{m}, 0) AS {m}" for m in STOCK + FLOWS]
            + [f"coalesce(bill.{m}, 0) AS {m}" for m in BILLING]
        ),
        billing=t["billing"],
    )


def insert_own(cursor, family, table, params, units=None):
    columns = ", ".join(family.columns)
    cursor.execute(f"INSERT INTO {table} ({columns}) {own_select(family, units)}", params)
    return cursor.rowcount


# --- Subtree rows ----------------------------------------------------------------------------

SUBTREE_SQL = """
INSERT INTO {subtree} ({columns})
SELECT target, month, {dims}, {sums} FROM (
    SELECT o.unit_id AS target, o.month, {dims_o}, {measures_o} FROM {own} o
     WHERE o.unit_id = ANY(%(units)s::bigint[]) AND o.month = ANY(%(months)s::date[])
    UNION ALL
    SELECT u.parent_id, s.month, {dims_s}, {measures_s} FROM {subtree} s JOIN {orgunit} u ON u.id = s.unit_id
     WHERE u.parent_id = ANY(%(units)s::bigint[]) AND s.month = ANY(%(months)s::date[])
) x
GROUP BY target, month, {dims}
"""


def insert_subtree(cursor, family, own_table, subtree_table, units, months):
    """Subtree rows of ``units`` (all at one depth, their children's rows already current) for
    ``months``: their own rows plus their children's subtree rows."""
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
    """``[(depth, [unit ids])]``, deepest first: every unit, or ``unit_ids`` and their ancestors."""
    units = OrgUnit.objects.order_by()
    if unit_ids is not None:
        paths = set(OrgUnit.objects.filter(pk__in=list(unit_ids)).values_list("path", flat=True))
        step = OrgUnit.steplen
        prefixes = {path[:end] for path in paths for end in range(step, len(path) + 1, step)}
        units = units.filter(path__in=prefixes)
    by_depth = {}
    for pk, depth in units.values_list("pk", "depth"):
        by_depth.setdefault(depth, []).append(pk)
    return sorted(by_depth.items(), reverse=True)


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
    """An empty copy of ``table`` (columns, constraints, indexes) to fill and swap in."""
    shadow = SHADOW.format(table)
    cursor.execute(f"DROP TABLE IF EXISTS {shadow}")
    cursor.execute(f"CREATE TABLE {shadow} (LIKE {table} INCLUDING ALL)")
    return shadow


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
