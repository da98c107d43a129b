"""Writes around imports: saved column mappings and import jobs (R7).

Who may: anyone holding "customer.add" at some unit may import and save mappings (rows are then
checked unit by unit: see run.py); a mapping is changed or deleted by its creator or a tenant
admin, a shipped mapping (no creator) by tenant admins only. A job belongs to its creator; tenant
admins see every job.

A job moves  uploaded -> checking -> checked | invalid  (the dry run)  and  checked -> queued ->
importing -> done | invalid  (the commit, which checks everything again). Small files run in the
request; larger ones in Celery (key_accounts.tasks), queued after the job's row is committed.
Either way the run holds the job's advisory lock (progress.py): a job found "checking" or
"importing" with a free lock lost its process and is marked failed — nothing was written, since
the commit is one transaction — and can be checked or committed again.
"""
import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from key_accounts.models import ColumnMapping, ImportJob
from permissions.scope import resolve_scope

from . import progress as live
from .reader import kind_of
from .run import ErrorLog, run_import
from .spec import check_spec, needs_unit, with_unit

logger = logging.getLogger(__name__)
Status = ImportJob.Status

RUNNING = (Status.CHECKING, Status.IMPORTING)
WAITING = (Status.CHECK_QUEUED, Status.QUEUED)
DEFAULT_INLINE_BYTES = 2 << 20


def inline_limit():
    """Files up to this size are checked and imported in the request (the IBM sample is 0.9 MB)."""
    return getattr(settings, "KAM_IMPORT_INLINE_BYTES", DEFAULT_INLINE_BYTES)


def may_import(user):
    return resolve_scope(user).holds_anywhere("customer.add")


def _require_importer(actor):
    if not may_import(actor):
        raise PermissionDenied(_("Importing customers needs the permission to add customers at some unit."))


# --- Column mappings -------------------------------------------------------------------------

def _check_mapping_spec(spec):
    try:
        return check_spec(spec)
    except ValidationError as exc:
        raise ValidationError({"spec": exc.messages}) from None


def _may_change_mapping(actor, mapping):
    return actor.is_superuser or (mapping.created_by_id is not None and mapping.created_by_id == actor.pk)


@transaction.atomic
def mapping_create(*, actor, name, spec, description=""):
    _require_importer(actor)
    _check_mapping_spec(spec)
    mapping = ColumnMapping(name=name.strip(), description=description, spec=spec, created_by=actor)
    mapping.full_clean()
    mapping.save()
    return mapping


@transaction.atomic
def mapping_update(*, actor, mapping, **data):
    _require_importer(actor)
    if not _may_change_mapping(actor, mapping):
        raise PermissionDenied(_("Only its creator or a tenant admin may change this mapping."))
    unknown = set(data) - {"name", "description", "spec"}
    if unknown:
        raise ValidationError({name: [_("This field cannot be set here.")] for name in sorted(unknown)})
    if "spec" in data:
        _check_mapping_spec(data["spec"])
    for name, value in data.items():
        setattr(mapping, name, value.strip() if name == "name" else value)
    mapping.full_clean()
    mapping.save()
    return mapping


@transaction.atomic
def mapping_delete(*, actor, mapping):
    _require_importer(actor)
    if not _may_change_mapping(actor, mapping):
        raise PermissionDenied(_("Only its creator or a tenant admin may delete this mapping."))
    mapping.delete()


# --- Jobs ------------------------------------------------------------------------------------

def _job_spec(actor, *, mapping, spec, unit):
    """The spec a job runs with: the inline ``spec`` or the mapping's, with the chosen unit."""
    if spec is None and mapping is None:
        raise ValidationError({"mapping": [_("Choose a saved mapping or give one.")]})
    raw = spec if spec is not None else mapping.spec
    checked = _check_mapping_spec(raw)
    if needs_unit(checked):
        if unit is None:
            raise ValidationError({"unit": [_("Choose the unit the imported customers go to.")]})
        if not resolve_scope(actor).allows("customer.add", unit.pk) or not unit.is_active:
            raise ValidationError({"unit": [_("You may not add customers to this unit.")]})
        raw = with_unit(raw, unit.code)
    elif unit is not None:
        raise ValidationError({"unit": [_("This mapping already says which unit each customer goes to.")]})
    return raw


def job_create(*, actor, upload, mapping=None, spec=None, unit=None, start=True):
    """Store the uploaded file as a new job. With ``start`` the mapping (and unit) must be
    complete and the dry run begins at once (in the request for small files, else queued);
    without it (the wizard) the mapping is given later with ``job_map``."""
    _require_importer(actor)
    name = Path(upload.name or "").name
    if kind_of(name) is None:
        raise ValidationError({"file": [_("Only CSV and XLSX files can be imported.")]})
    if start:
        raw = _job_spec(actor, mapping=mapping, spec=spec, unit=unit)
    else:
        raw = spec if spec is not None else (mapping.spec if mapping is not None else {})
    job = ImportJob(created_by=actor, original_name=name[:255], mapping=mapping, spec=raw,
                    language=translation.get_language() or settings.LANGUAGE_CODE)
    job.file.save(name, upload, save=False)
    job.save()
    if start:
        job = job_check(actor=actor, job=job)
    return job


def _require_owner(actor, job):
    if not (actor.is_superuser or job.created_by_id == actor.pk):
        raise PermissionDenied(_("This import belongs to someone else."))


def job_map(*, actor, job, mapping=None, spec=None, unit=None):
    """Set the mapping (and unit) of a job that is not running or done; its dry run starts again."""
    _require_importer(actor)
    _require_owner(actor, job)
    raw = _job_spec(actor, mapping=mapping, spec=spec, unit=unit)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status in RUNNING + WAITING or job.status == Status.DONE:
            raise ValidationError({"status": [_("This import can no longer be changed.")]})
        job.spec, job.mapping, job.checked_at = raw, mapping, None
        job.save(update_fields=["spec", "mapping", "checked_at"])
    return job_check(actor=actor, job=job)


def _start(job, *, commit):
    """Run the job now when its file is small, else queue it for a worker (after the current
    transaction, if any, commits). Returns the job as it is afterwards."""
    from kam.celery import enqueue_on_commit
    from key_accounts import tasks

    if job.file.size <= inline_limit():
        return run_job(job.pk, commit=commit) or job
    enqueue_on_commit(tasks.import_commit if commit else tasks.import_check, job.pk)
    return job


def job_check(*, actor, job):
    """(Re)start the dry run of a job that is not running, queued or done."""
    _require_importer(actor)
    _require_owner(actor, job)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status in RUNNING + WAITING or job.status == Status.DONE:
            raise ValidationError({"status": [_("This import is running or done.")]})
        checked = _check_mapping_spec(job.spec)
        if needs_unit(checked):
            raise ValidationError({"unit": [_("Choose the unit the imported customers go to.")]})
        job.status, job.message, job.checked_at = Status.CHECK_QUEUED, "", None
        job.save(update_fields=["status", "message", "checked_at"])
    return _start(job, commit=False)


def job_commit(*, actor, job):
    """Import a job whose dry run passed (a failed import may be committed again: it wrote
    nothing). The commit checks every row again and writes only if all are still valid."""
    _require_importer(actor)
    _require_owner(actor, job)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        ready = job.status == Status.CHECKED or (job.status in (Status.FAILED, Status.QUEUED) and job.checked_at is not None)
        if not ready:
            raise ValidationError({"status": [_("Only a checked import without errors can be imported.")]})
        job.status, job.message = Status.QUEUED, ""
        job.save(update_fields=["status", "message"])
    return _start(job, commit=True)


def job_refresh(job):
    """A job that says it is running while no process holds its lock is marked failed (its
    worker was killed or lost the database). Returns the job as it is now."""
    if job.status not in RUNNING or live.is_running_elsewhere(job.pk):
        return job
    with live.job_lock(job.pk) as locked:
        if not locked:
            return job
        job.refresh_from_db()
        if job.status in RUNNING:
            was_import = job.status == Status.IMPORTING
            job.status = Status.FAILED
            job.finished_at = timezone.now()
            with translation.override(job.language or settings.LANGUAGE_CODE):  # whoever noticed, the creator reads it
                job.message = (
                    _("The import stopped before it finished (its worker was stopped or lost the database). Nothing was "
                      "written. You can import it again.") if was_import else
                    _("The check stopped before it finished (its worker was stopped or lost the database). Check the file "
                      "again.")
                )
            job.save(update_fields=["status", "finished_at", "message"])
            live.Progress(job.pk).clear()
            logger.warning("import job %s found dead while %s: marked failed", job.pk, "importing" if was_import else "checking")
    return job


def jobs_reap_stale():
    """job_refresh for every job that says it is running (beat, per tenant). Returns how many failed."""
    failed = 0
    for job in ImportJob.objects.filter(status__in=RUNNING):
        if job_refresh(job).status == Status.FAILED:
            failed += 1
    return failed


def job_fail_waiting(job_id, reason):
    """A task gave up on ``job_id`` (out of retries, or a bug): a job still waiting or running
    under no lock is marked failed with the reason."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in WAITING + RUNNING or live.is_running_elsewhere(job_id):
        return job
    job.status, job.finished_at = Status.FAILED, timezone.now()
    with translation.override(job.language or settings.LANGUAGE_CODE):
        job.message = _("The import could not run: %(error)s. Nothing was written.") % {"error": reason}
    job.save(update_fields=["status", "finished_at", "message"])
    return job


# --- Running a job (the task or the request) -------------------------------------------------

def run_job(job_id, *, commit):
    """Run the dry run (or the commit) of job ``job_id`` if it is waiting for it; idempotent: a
    job already running elsewhere, finished or changed meanwhile is left alone."""
    with live.job_lock(job_id) as locked:
        if not locked:
            return None
        job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
        expected = (Status.QUEUED, Status.IMPORTING) if commit else (Status.CHECK_QUEUED, Status.CHECKING)
        if job is None or job.status not in expected:
            return job
        job.status = Status.IMPORTING if commit else Status.CHECKING
        job.started_at, job.finished_at, job.message = timezone.now(), None, ""
        job.processed_rows = 0
        job.save(update_fields=["status", "started_at", "finished_at", "message", "processed_rows"])
        meter = live.Progress(job.pk)
        errors = ErrorLog()
        try:
            try:
                # Errors are stored as text, in the language of the job's creator.
                with translation.override(job.language or settings.LANGUAGE_CODE):
                    outcome = run_import(
                        actor=job.created_by, path=job.file.path, name=job.original_name, raw_spec=job.spec,
                        commit=commit, job_id=job.pk, progress=meter, errors=errors,
                    )
            except ValidationError as exc:  # the spec no longer passes (e.g. edited by hand)
                errors.add(1, "", " ".join(exc.messages))
                outcome = None
            except (OperationalError, InterfaceError):
                # Transient: back to waiting, and the task is retried (nothing was written).
                job.status = Status.QUEUED if commit else Status.CHECK_QUEUED
                job.save(update_fields=["status"])
                raise
            except Exception as exc:  # a bug or a broken file: say so on the job
                logger.exception("import job %s failed", job.pk)
                job.status, job.finished_at = Status.FAILED, timezone.now()
                with translation.override(job.language or settings.LANGUAGE_CODE):
                    job.message = _("The import failed: %(error)s. Nothing was written.") % {"error": exc}
                job.save(update_fields=["status", "finished_at", "message"])
                return job
            errors.save(job.pk)
        finally:
            errors.close()
            meter.clear()
        _finish(job, outcome, errors.count, commit)
        return job


def _finish(job, outcome, error_count, commit):
    now = timezone.now()
    job.error_count = error_count
    job.finished_at = now
    if outcome is None:
        job.status = Status.INVALID
    else:
        job.total_rows = job.processed_rows = outcome.rows
        job.created_count, job.updated_count, job.unchanged_count = outcome.created, outcome.updated, outcome.unchanged
        job.encoding = outcome.encoding
        if not outcome.ok:
            job.status = Status.INVALID
            job.checked_at = None
        elif commit:
            job.status = Status.DONE
        else:
            job.status = Status.CHECKED
            job.checked_at = now
        logger.info("import job %s %s: %s rows, %s created, %s updated, %s errors, %ss %s", job.pk,
                    "commit" if commit else "dry run", outcome.rows, outcome.created, outcome.updated, error_count,
                    outcome.seconds, outcome.timings)
    job.save()
