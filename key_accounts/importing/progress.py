"""Is an import alive, and how far is it? Two small mechanisms outside the import's transaction.

Liveness: the process running a job holds a PostgreSQL session advisory lock on it for the whole
run. PostgreSQL drops the lock when that session ends, so a killed worker (kill -9, a lost
node) frees it as soon as its backend notices the closed connection (the import sets
``client_connection_check_interval``, so even mid-statement). A job that says "checking" or
"importing" while its lock is free is therefore dead: ``services.job_refresh`` marks it failed.

Progress: rows read so far and the phase, in the cache (the import's own transaction is not
visible to others until it ends); the job row gets the final figures.
"""
import contextlib

from django.core.cache import cache
from django.db import connection

PROGRESS_TTL = 24 * 60 * 60


def _lock_key_sql():
    # One bigint key per tenant schema and job: job ids repeat across tenant schemas.
    return "hashtextextended(%s, 0)"


def _lock_name(job_id):
    return f"kam-import:{connection.schema_name}:{int(job_id)}"


@contextlib.contextmanager
def job_lock(job_id):
    """Hold the job's advisory lock for the block; yields False when another session has it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({_lock_key_sql()})", [_lock_name(job_id)])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({_lock_key_sql()})", [_lock_name(job_id)])


def is_running_elsewhere(job_id):
    """True while some session holds the job's lock (a worker or request running it)."""
    with job_lock(job_id) as locked:
        return not locked


class Progress:
    """Reported by the running import, read by the API and the page (htmx polling)."""

    def __init__(self, job_id):
        self.key = f"import-progress:{int(job_id)}"
        self.state = {"phase": "", "rows": 0, "total": 0}

    def _save(self):
        cache.set(self.key, self.state, timeout=PROGRESS_TTL)

    def start(self, total, phase):
        self.state = {"phase": phase, "rows": 0, "total": int(total)}
        self._save()

    def rows(self, count):
        self.state["rows"] = int(count)
        self.state["total"] = max(self.state["total"], int(count))
        self._save()

    def phase(self, name):
        self.state["phase"] = name
        self._save()

    def clear(self):
        cache.delete(self.key)


def progress_of(job_id):
    """``{"phase", "rows", "total"}`` of a running job, or None."""
    return cache.get(f"import-progress:{int(job_id)}")
