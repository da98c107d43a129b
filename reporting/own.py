"""Own rows: what each unit's own customers add up to, per month, straight from the archive.

The same statements serve the full recompute (every unit) and the incremental refresh (some
units): they only differ in which customers the first one picks. Three work tables, created and
dropped inside the caller's transaction (and analysed, so the joins after them are planned on
real sizes), feed the summary tables:

1. ``rollup_work_customer``: one row per customer of the units asked for, with its cell (unit,
   grade, industry, group), its first month in the window, and its churn month: the first history
   snapshot (pghistory) of its current run of "churned" snapshots, or its creation without any.
2. ``rollup_work_billing``: billing records per cell and month. A record is a billed customer,
   except for customers with several billing accounts, whose records are first grouped per
   customer and month: no DISTINCT has to sort every record.
3. ``rollup_work_change``: how the stock of each cell changes each month: a customer enters in its
   first month, moves to "churned" in its churn month; a subscription counts from its start month
   to its end month.

Stock figures are then running sums of the changes, carried forward month by month until the
next change; a customer or a subscription is read once, not once per month.
"""
from key_accounts.models import BillingAccount, BillingRecord, Customer, Subscription

WORK_TABLES = ("rollup_work_customer", "rollup_work_billing", "rollup_work_change")

STOCK = ("customers", "prospects", "active", "abnormal", "churned", "enterprises", "governments", "institutions",
         "individuals", "national", "subscriptions")
FLOWS = ("new_customers", "lost_customers")
BILLING = ("billed_customers", "revenue", "arrears", "discount")
PRODUCT_MEASURES = ("holders", "subscriptions", "quantity", "monthly_fee")


def _names():
    return {
        "customer": Customer._meta.db_table,
        "event": Customer.pgh_event_model._meta.db_table,  # the customers' history snapshots
        "subscription": Subscription._meta.db_table,
        "billing": BillingRecord._meta.db_table,
        "account": BillingAccount._meta.db_table,
    }


END = "((%(last)s::date + interval '1 month')::timestamp AT TIME ZONE %(tz)s)"  # the window's end

CUSTOMERS = """
CREATE TEMP TABLE rollup_work_customer AS
SELECT c.id, c.org_unit_id AS unit_id, c.grade, c.industry,
       CASE WHEN c.is_group THEN c.id ELSE c.group_id END AS group_id,
       c.kind, c.is_national_key_account AS national,
       CASE WHEN c.status = 'churned' THEN 'active' ELSE c.status END AS live,
       date_trunc('month', c.created_at AT TIME ZONE %(tz)s)::date AS born,
       greatest(date_trunc('month', c.created_at AT TIME ZONE %(tz)s)::date, %(first)s::date) AS since,
       CASE WHEN c.status = 'churned'
            THEN date_trunc('month', coalesce(churn.at, c.created_at) AT TIME ZONE %(tz)s)::date END AS lost,
       several.customer_id IS NOT NULL AS several_accounts
  FROM {customer} c
  LEFT JOIN (
      SELECT a.customer_id FROM {account} a JOIN {customer} owner ON owner.id = a.customer_id AND {unit_filter_owner}
       GROUP BY a.customer_id HAVING count(*) > 1
  ) several ON several.customer_id = c.id
  LEFT JOIN (
      SELECT e.pgh_obj_id AS id, min(e.pgh_created_at) AS at
        FROM {event} e JOIN {customer} gone ON gone.id = e.pgh_obj_id AND gone.status = 'churned'
       WHERE e.status = 'churned' AND {unit_filter_gone}
         AND NOT EXISTS (SELECT FROM {event} o WHERE o.pgh_obj_id = e.pgh_obj_id AND o.status <> 'churned'
                                                 AND o.pgh_created_at > e.pgh_created_at)
       GROUP BY e.pgh_obj_id
  ) churn ON churn.id = c.id
 WHERE {unit_filter} AND c.created_at < """ + END

BILLING_SQL = """
CREATE TEMP TABLE rollup_work_billing AS
SELECT unit_id, grade, industry, group_id, month,
       sum(CASE WHEN customer_id IS NULL THEN records ELSE 1 END)::int AS billed_customers,
       sum(revenue) AS revenue, sum(arrears) AS arrears, sum(discount) AS discount
  FROM (
      -- Records of customers with one billing account are one billed customer each; those of
      -- customers with several are first grouped per customer and month.
      SELECT w.unit_id, w.grade, w.industry, w.group_id, b.month,
             CASE WHEN w.several_accounts THEN b.customer_id END AS customer_id, count(*) AS records,
             sum(b.revenue) AS revenue, sum(b.arrears) AS arrears, sum(b.discount) AS discount
        FROM {billing} b JOIN rollup_work_customer w ON w.id = b.customer_id
       WHERE b.month = ANY(%(months)s::date[])
       GROUP BY 1, 2, 3, 4, 5, 6
  ) per_customer
 GROUP BY 1, 2, 3, 4, 5
"""

# Subscriptions of the customers that overlap the window, as whole months [a, z] (z infinite
# while open).
SUBSCRIPTIONS = """
SELECT w.unit_id, w.grade, w.industry, w.group_id, s.customer_id, s.product_id, s.quantity, s.monthly_fee,
       greatest(date_trunc('month', s.start_date)::date, %(first)s::date) AS a,
       coalesce(date_trunc('month', s.end_date)::date, 'infinity'::date) AS z
  FROM {subscription} s JOIN rollup_work_customer w ON w.id = s.customer_id
 WHERE s.start_date < %(last)s::date + interval '1 month' AND (s.end_date IS NULL OR s.end_date >= %(first)s::date)
"""

CHANGES = """
CREATE TEMP TABLE rollup_work_change AS
SELECT unit_id, grade, industry, group_id, month, {sums} FROM (
    -- A customer enters the stock in its first month of the window, churned already or not ...
    SELECT unit_id, grade, industry, group_id, since AS month, 1 AS customers,
           (NOT gone AND live = 'prospect')::int AS prospects, (NOT gone AND live = 'active')::int AS active,
           (NOT gone AND live = 'abnormal')::int AS abnormal, gone::int AS churned,
           (kind = 'enterprise')::int AS enterprises, (kind = 'government')::int AS governments,
           (kind = 'institution')::int AS institutions, (kind = 'individual')::int AS individuals,
           national::int AS national, 0 AS subscriptions,
           (born >= %(first)s::date)::int AS new_customers, (lost IS NOT NULL AND lost = since)::int AS lost_customers
      FROM (SELECT w.*, w.lost IS NOT NULL AND w.lost <= w.since AS gone FROM rollup_work_customer w) x
    UNION ALL  -- ... and moves to "churned" in its churn month;
    SELECT unit_id, grade, industry, group_id, lost, 0, -(live = 'prospect')::int, -(live = 'active')::int,
           -(live = 'abnormal')::int, 1, 0, 0, 0, 0, 0, 0, 0, 1
      FROM rollup_work_customer WHERE lost > since AND lost <= %(last)s::date
    UNION ALL  -- a subscription counts from its start month to its end month.
    SELECT unit_id, grade, industry, group_id, edge.month, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, edge.step, 0, 0
      FROM ({subscriptions}) s
     CROSS JOIN LATERAL (VALUES (s.a, 1), ((s.z + interval '1 month')::date, -1)) AS edge(month, step)
     WHERE edge.month <= %(last)s::date
) changes
GROUP BY 1, 2, 3, 4, 5
"""

# The stock of a cell in every month from its first change on: running sums at each change month,
# carried forward until the month before the next change (or the window's end).
MEASURES = """
INSERT INTO {table} ({columns})
WITH changes AS (
    SELECT unit_id, {dims}, month, {sums} FROM rollup_work_change {where} GROUP BY unit_id, {dims}, month
),
running AS (
    SELECT unit_id, {dims}, month, {running}, {flows},
           coalesce((lead(month) OVER w - interval '1 month')::date, %(last)s::date) AS until
      FROM changes
    WINDOW w AS (PARTITION BY unit_id, {dims} ORDER BY month)
),
stock AS (
    SELECT r.unit_id, {r_dims}, m.month::date AS month, {r_stock},
           {r_flows}
      FROM running r CROSS JOIN LATERAL generate_series(r.month, r.until, interval '1 month') AS m(month)
     WHERE m.month::date = ANY(%(months)s::date[])
),
bill AS (
    SELECT unit_id, {dims}, month, {bill_sums} FROM rollup_work_billing {where} GROUP BY unit_id, {dims}, month
)
SELECT unit_id, month, {dims}, {final}
  FROM stock FULL JOIN bill USING (unit_id, {dims}, month)
 WHERE coalesce(stock.customers, 0) + coalesce(stock.subscriptions, 0) + coalesce(stock.new_customers, 0)
       + coalesce(stock.lost_customers, 0) > 0 OR bill.unit_id IS NOT NULL
"""

PRODUCTS = """
INSERT INTO {table} (unit_id, month, product_id, holders, subscriptions, quantity, monthly_fee)
WITH subs AS ({subscriptions}),
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
    SELECT unit_id, product_id, month, sum(holders)::int AS holders, sum(subscriptions)::int AS subscriptions,
           sum(quantity)::bigint AS quantity, sum(monthly_fee) AS monthly_fee FROM (
        SELECT unit_id, product_id, edge.month, 0 AS holders, edge.step AS subscriptions,
               edge.step * quantity AS quantity, edge.step * monthly_fee AS monthly_fee
          FROM subs CROSS JOIN LATERAL (VALUES (a, 1), ((z + interval '1 month')::date, -1)) AS edge(month, step)
         WHERE edge.month <= %(last)s::date
        UNION ALL
        SELECT unit_id, product_id, edge.month, edge.step, 0, 0, 0
          FROM islands CROSS JOIN LATERAL (VALUES (a, 1), ((z + interval '1 month')::date, -1)) AS edge(month, step)
         WHERE edge.month <= %(last)s::date
    ) edges
    GROUP BY unit_id, product_id, month
),
running AS (
    SELECT unit_id, product_id, month, sum(holders) OVER w AS holders, sum(subscriptions) OVER w AS subscriptions,
           sum(quantity) OVER w AS quantity, sum(monthly_fee) OVER w AS monthly_fee,
           coalesce((lead(month) OVER w - interval '1 month')::date, %(last)s::date) AS until
      FROM changes
    WINDOW w AS (PARTITION BY unit_id, product_id ORDER BY month)
)
SELECT r.unit_id, m.month::date, r.product_id, r.holders, r.subscriptions, r.quantity, r.monthly_fee
  FROM running r CROSS JOIN LATERAL generate_series(r.month, r.until, interval '1 month') AS m(month)
 WHERE m.month::date = ANY(%(months)s::date[]) AND (r.holders > 0 OR r.subscriptions > 0)
"""


def _unit_filter(column, units):
    return "TRUE" if units is None else f"{column} = ANY(%(units)s::bigint[])"


def prepare(cursor, params, units=None):
    """Fill the work tables for ``units`` (None: every unit); ``params`` as engine.params()."""
    names = _names()
    drop(cursor)
    cursor.execute(CUSTOMERS.format(unit_filter=_unit_filter("c.org_unit_id", units),
                                    unit_filter_gone=_unit_filter("gone.org_unit_id", units),
                                    unit_filter_owner=_unit_filter("owner.org_unit_id", units), **names), params)
    cursor.execute("ANALYZE rollup_work_customer")
    cursor.execute(BILLING_SQL.format(**names), params)
    sums = ", ".join(f"sum({m})::int AS {m}" for m in STOCK + FLOWS)
    subscriptions = SUBSCRIPTIONS.format(**names)
    cursor.execute(CHANGES.format(sums=sums, subscriptions=subscriptions), params)
    cursor.execute("ANALYZE rollup_work_billing")
    cursor.execute("ANALYZE rollup_work_change")


def drop(cursor):
    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(WORK_TABLES)}")


def insert_measures(cursor, table, dims, params, *, groups_only=False):
    """Own rows with the customer and billing measures into ``table``, by unit, month and
    ``dims`` (("grade", "industry") or ("group_id",)); returns the number of rows."""
    where = "WHERE group_id IS NOT NULL" if groups_only else ""
    dims_sql = ", ".join(dims)
    sql = MEASURES.format(
        table=table, where=where, dims=dims_sql,
        columns=", ".join(("unit_id", "month", *dims, *STOCK, *FLOWS, *BILLING)),
        sums=", ".join(f"sum({m})::int AS {m}" for m in STOCK + FLOWS),
        running=", ".join(f"sum({m}) OVER w AS {m}" for m in STOCK),
        flows=", ".join(FLOWS),
        r_dims=", ".join(f"r.{d}" for d in dims),
        r_stock=", ".join(f"r.{m}" for m in STOCK),
        r_flows=", ".join(f"CASE WHEN m.month = r.month THEN r.{m} ELSE 0 END AS {m}" for m in FLOWS),
        bill_sums=", ".join(f"sum({m}) AS {m}" for m in BILLING),
        final=", ".join([f"coalesce(stock.{m}, 0)" for m in STOCK + FLOWS] + [f"coalesce(bill.{m}, 0)" for m in BILLING]),
    )
    cursor.execute(sql, params)
    return cursor.rowcount


def insert_products(cursor, table, params):
    cursor.execute(PRODUCTS.format(table=table, subscriptions=SUBSCRIPTIONS.format(**_names())), params)
    return cursor.rowcount
