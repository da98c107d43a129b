"""Test-only tasks. The worker started by tests/platform/test_celery.py imports this
module (``--include tests.support.tasks``), so keep it free of test-run state."""
from django.core.cache import cache
from django.db import OperationalError, connection

from kam.celery import app


@app.task(bind=True)
def flaky(self, key, failures):
    """Fail with a transient database error ``failures`` times, then report where it ran.

    The attempt counter lives in the cache, which is keyed by schema, like the task.
    """
    cache.add(key, 0, timeout=300)
    attempts = cache.incr(key)
    if attempts <= failures:
        raise OperationalError(f"simulated transient failure {attempts}/{failures}")
    return {"schema": connection.schema_name, "attempts": attempts, "retries": self.request.retries}
