"""Keeping the roll-ups current: incremental refreshes and full recomputes.

- ``mark_dirty(units, months)``: called by every write that changes figures (key_accounts
  services, billing records, re-orgs, bulk loads). When the transaction commits, the keys go to
  Redis and one ``rollup_refresh`` task is queued per burst; it refreshes the own rows of those
  units and months, then the subtree rows of their whole chain up to the root.
- ``recompute()``: rebuilds every table from the archive (nightly, after re-orgs, after bulk
  loads) and swaps them in atomically.

Both run under one per-tenant advisory lock, so they never interleave. A key whose change a
recompute may have missed stays in Redis and is refreshed after it, so neither loses a change;
both run the same SQL (reporting/engine.py), so they give identical rows.
"""
import logging
import time

from django.conf import settings
from django.db import connection, transaction

from . import dirty, engine

logger = logging.getLogger(__name__)

REFRESH_DELAY = 1  # seconds: a burst of changes within it is refreshed once
FULL_DELAY = 30  # seconds: re-orgs and imports within it are recomputed once


def _lock(cursor):
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{connection.schema_name}:rollups"])


def _work_mem(cursor):
    cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.KAM_ROLLUP_WORK_MEM])


# --- Marking -------------------------------------------------------------------------------

def mark_dirty(units, months=None):
    """Refresh ``units`` (ids or OrgUnits; None entries are skipped) for ``months`` (dates of
    first days; None: every month of the window) once the current transaction commits, and their
    ancestors after them. Safe to call often: keys are deduplicated and bursts coalesced."""
    ids = sorted({getattr(unit, "pk", unit) for unit in units if unit is not None})
    if not ids:
        return
    keys = dirty.members(ids, None if months is None else sorted({m.replace(day=1) for m in months}))
    schema = connection.schema_name
    transaction.on_commit(lambda: _queue_refresh(schema, keys), robust=True)


def _queue_refresh(schema, keys):
    from kam.celery import enqueue_on_commit

    from .tasks import rollup_refresh

    if dirty.add(schema, keys):
        enqueue_on_commit(rollup_refresh.s().set(countdown=REFRESH_DELAY))


def recompute_later(delay=FULL_DELAY):
    """Queue one full recompute of the current tenant when the transaction commits (requests
    within ``delay`` seconds share it). For bulk loads and re-orgs."""
    schema = connection.schema_name

    def queue():
        from kam.celery import enqueue_on_commit

        from .tasks import rollup_full

        if dirty.claim_full(schema, delay + 60):
            enqueue_on_commit(rollup_full.s().set(countdown=delay))

    transaction.on_commit(queue, robust=True)


def tree_changed(*units):
    """A re-org touched ``units`` (moved from or to them, merged them): refresh them and both
    chains now, and recompute everything shortly after."""
    mark_dirty(units)
    recompute_later()


# --- Refreshing ----------------------------------------------------------------------------

@transaction.atomic
def refresh(units, months=None, *, today=None):
    """Recompute the own rows of ``units`` × ``months`` (None: the whole window; months outside
    it are ignored), then the subtree rows of those months for the units and all their
    ancestors with children, deepest first. Returns the number of rows written."""
    first, last = engine.window(today)
    wanted = engine.months_between(first, last)
    if months is not None:
        wanted = sorted({m for m in months if first <= m <= last})
    units = sorted(set(units))
    if not units or not wanted:
        return 0
    written = 0
    with connection.cursor() as cursor:
        _lock(cursor)
        params = {**engine.params(first, last, wanted), "units": units}
        tables = {family.name: family.own._meta.db_table for family in engine.FAMILIES}
        for table in tables.values():
            cursor.execute(f"DELETE FROM {table} WHERE unit_id = ANY(%(units)s) AND month = ANY(%(months)s)", params)
        written += sum(engine.insert_own(cursor, tables, params, units).values())
        for _depth, internal, leaves in engine.units_by_depth(units):
            for family in engine.FAMILIES:
                if family.subtree is None:
                    continue
                own, subtree = family.own._meta.db_table, family.subtree._meta.db_table
                # A unit that lost its last child (a re-org) keeps no subtree rows either.
                cursor.execute(f"DELETE FROM {subtree} WHERE unit_id = ANY(%s) AND month = ANY(%s)",
                               [internal + leaves, wanted])
                if internal:
                    written += engine.insert_subtree(cursor, family, own, subtree, internal, wanted)
    return written


def refresh_dirty(*, today=None):
    """Take every dirty key of the current tenant and refresh them in one transaction (keys go
    back to Redis if it fails). Returns what was done, for the task result and the logs."""
    schema = connection.schema_name
    raw = dirty.take(schema)
    if not raw:
        return {"schema": schema, "keys": 0, "units": 0, "rows": 0}
    units, months = dirty.parse(raw)
    started = time.perf_counter()
    try:
        rows = refresh(units, months, today=today)
    except Exception:
        dirty.put_back(schema, raw)
        raise
    result = {"schema": schema, "keys": len(raw), "units": len(units), "rows": rows,
              "ms": round((time.perf_counter() - started) * 1000, 1)}
    logger.info("roll-ups refreshed", extra={"rollup": result})
    return result


def recompute(*, today=None):
    """Rebuild every summary table from the archive for the whole window, in one transaction:
    each table is built as a shadow and swapped in at the end (readers see the old figures until
    the commit and wait only for the swap itself). Returns row counts per table."""
    first, last = engine.window(today)
    months = engine.months_between(first, last)
    started = time.perf_counter()
    counts = {}
    steps = engine.Steps()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        _work_mem(cursor)
        params = engine.params(first, last, months)
        shadows = {family.own._meta.db_table: engine.create_shadow(cursor, family.own._meta.db_table)
                   for family in engine.FAMILIES}
        built = engine.insert_own(cursor, {f.name: shadows[f.own._meta.db_table] for f in engine.FAMILIES}, params,
                                  steps=steps)
        counts.update({table: built[shadow] for table, shadow in shadows.items()})
        with steps("index_own"):
            for table in shadows:
                engine.index_shadow(cursor, table)  # the subtree statements read own rows by unit
        levels = engine.units_by_depth()
        with steps("subtree"):
            for family in engine.FAMILIES:
                if family.subtree is None:
                    continue
                own, subtree = family.own._meta.db_table, family.subtree._meta.db_table
                shadows[subtree] = engine.create_shadow(cursor, subtree)
                counts[subtree] = sum(
                    engine.insert_subtree(cursor, family, shadows[own], shadows[subtree], internal, months)
                    for _depth, internal, _leaves in levels if internal
                )
        with steps("index_subtree"):
            for family in engine.FAMILIES:
                if family.subtree is not None:
                    engine.index_shadow(cursor, family.subtree._meta.db_table)
        with steps("analyze"):
            for table in shadows:
                cursor.execute(f"ANALYZE {shadows[table]}")
        with steps("swap"):
            for table in shadows:
                engine.swap(cursor, table)
    result = {"schema": connection.schema_name, "months": len(months), "rows": counts,
              "s": round(time.perf_counter() - started, 3), "steps": dict(steps)}
    logger.info("roll-ups recomputed", extra={"rollup": result})
    return result
