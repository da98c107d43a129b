"""Celery tasks of the key-account archive. Thin: each takes ids, runs in the tenant schema of
the message (kam.celery.TenantTask) and calls the code that does the work."""
import logging

from django.db import connection
from django_tenants.utils import get_public_schema_name

from kam.celery import TenantTask, app

from . import exporting

logger = logging.getLogger(__name__)


# --- Exports (key_accounts/exporting.py) -----------------------------------------------------

class ExportTask(TenantTask):
    abstract = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Out of retries or a bug: say so on the job instead of leaving it "running" forever
        # (not when the tenant itself was missing: there is no job table to write to).
        logger.error("export job %s failed: %r", args[0] if args else None, exc)
        if args and connection.schema_name != get_public_schema_name():
            exporting.job_mark_failed(args[0])


@app.task(base=ExportTask)
def export_customers(job_id):
    """Write the file of export job ``job_id``; safe to run twice (a finished job is kept)."""
    job = exporting.job_run(job_id)
    return {"job": job_id, "status": job.status if job else None, "rows": job.row_count if job else 0}


@app.task
def exports_cleanup():
    """Delete the tenant's export files and jobs older than KAM_EXPORT_RETENTION_DAYS (beat)."""
    return {"deleted": exporting.jobs_cleanup()}


# --- Imports (key_accounts/importing/) -------------------------------------------------------

class ImportTask(TenantTask):
    abstract = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Out of retries or a bug: the job says so instead of waiting forever.
        logger.error("import job %s failed: %r", args[0] if args else None, exc)
        if args and connection.schema_name != get_public_schema_name():
            from .importing.services import job_fail_waiting

            job_fail_waiting(args[0], str(exc))


@app.task(base=ImportTask)
def import_check(job_id):
    """The dry run of import job ``job_id``; safe to run twice (a job not waiting for it is left alone)."""
    from .importing.services import run_job

    job = run_job(job_id, commit=False)
    return {"job": job_id, "status": job.status if job else None}


@app.task(base=ImportTask)
def import_commit(job_id):
    """The commit of import job ``job_id``: all rows or none; safe to run twice."""
    from .importing.services import run_job

    job = run_job(job_id, commit=True)
    return {"job": job_id, "status": job.status if job else None}


@app.task
def imports_reap_stale():
    """Mark failed the jobs that say they are running but lost their worker (beat, per tenant)."""
    from .importing.services import jobs_reap_stale

    return {"failed": jobs_reap_stale()}
