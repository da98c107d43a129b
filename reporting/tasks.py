"""Roll-up tasks. Thin: each runs in the tenant schema of its message (kam.celery.TenantTask),
is safe to run twice and calls reporting.services."""
from django.db import connection
from django_tenants.utils import get_public_schema_name

from kam.celery import app

from . import dirty, services


def _in_tenant():
    return connection.schema_name != get_public_schema_name()


@app.task
def rollup_refresh():
    """Refresh the (unit, month) keys marked dirty since the last run, and their chains."""
    if not _in_tenant():
        return None
    return services.refresh_dirty()


@app.task
def rollup_full():
    """Recompute every roll-up of the tenant (beat, nightly; after re-orgs and bulk loads)."""
    if not _in_tenant():
        return None
    dirty.release_full(connection.schema_name)  # a request from now on queues another run
    return services.recompute()
