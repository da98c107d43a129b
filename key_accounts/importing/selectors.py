"""Reads around imports, narrowed to what the user may see.

Import jobs are private to their creator; tenant admins (superusers of the tenant) see every
job. Column mappings are tenant-wide: everyone who may import (holds "customer.add" at some
unit) sees them all. An id the user may not see answers 404, like a missing one.
"""
from django.http import Http404

from key_accounts.models import ColumnMapping, ImportJob
from org_hierarchy.models import OrgUnit
from permissions.scope import resolve_scope

from . import progress as live
from .services import may_import


def job_list(*, user):
    jobs = ImportJob.objects.select_related("created_by", "mapping")
    if not may_import(user) and not user.is_superuser:
        return jobs.none()
    return jobs if user.is_superuser else jobs.filter(created_by=user)


def job_get(*, user, pk):
    job = job_list(user=user).filter(pk=pk).first()
    if job is None:
        raise Http404
    return job


def job_errors(job):
    """Every problem found by the job's last run, in file order."""
    return job.row_errors.order_by("line", "id")


def job_progress(job):
    """``{"phase", "processed_rows", "total_rows", "percent"}``: live figures while the job
    runs (from the running process), else the job's own."""
    running = job.status in (ImportJob.Status.CHECKING, ImportJob.Status.IMPORTING)
    live_state = live.progress_of(job.pk) if running else None
    if live_state:
        processed, total, phase = live_state["rows"], live_state["total"], live_state["phase"]
    elif job.status in (ImportJob.Status.CHECK_QUEUED, ImportJob.Status.QUEUED) or running:
        processed, total, phase = 0, job.total_rows, "waiting"
    else:
        processed, total = job.processed_rows, job.total_rows
        phase = "done" if job.status in (ImportJob.Status.DONE, ImportJob.Status.CHECKED, ImportJob.Status.INVALID) else ""
    percent = 100 if job.status == ImportJob.Status.DONE else (min(99, int(processed * 100 / total)) if total else 0)
    return {"phase": phase, "processed_rows": processed, "total_rows": total, "percent": percent}


def mapping_list(*, user):
    if not (user.is_superuser or may_import(user)):
        return ColumnMapping.objects.none()
    return ColumnMapping.objects.select_related("created_by").order_by("name")


def mapping_get(*, user, pk):
    mapping = mapping_list(user=user).filter(pk=pk).first()
    if mapping is None:
        raise Http404
    return mapping


def import_units(*, user):
    """Open units the user may add customers to (the wizard's choice of unit), in tree order."""
    units = OrgUnit.objects.filter(is_active=True).order_by("path")
    scope = resolve_scope(user)
    if scope.covers_every_unit("customer.add"):
        return units
    return units.filter(pk__in=sorted(scope.units("customer.add")))
