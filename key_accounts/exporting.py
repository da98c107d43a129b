"""Export of the customer list (R8): the list a user is looking at, as CSV or XLSX.

What is exported is ``selectors.customer_list(action="export")`` with the list's own filters, so
a file holds exactly the customers the user may export (their "customer.export" scope, group
members of the groups in it, direct grants) and nothing else. Rows are read through a
server-side cursor (``iterator(chunk_size=CHUNK)``) and written as they come: memory stays
constant whatever the size.

Small exports (up to ``settings.KAM_EXPORT_SYNC_LIMIT`` rows) stream straight into the
response; larger ones become an ExportJob that a Celery task (key_accounts.tasks) writes to
default storage under the tenant's folder. Those files are only handed out through
``job_download`` checks (the job's creator or a tenant admin, still allowed to export, with the
same export scope as when the file was written) and are deleted after
``settings.KAM_EXPORT_RETENTION_DAYS`` days.
"""
import csv
import hashlib
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import transaction
from django.http import FileResponse, Http404, QueryDict, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from permissions.scope import resolve_scope
from permissions.selectors import grant_ids, is_active_user

from . import selectors
from .models import Customer, ExportJob, Grade, Industry

FORMATS = ("csv", "xlsx")
CHUNK = 2000  # rows per server-side cursor fetch
CSV_BATCH = 500  # rows per chunk of a streamed CSV response
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A cell starting with one of these is a formula to Excel and LibreOffice: a customer named
# "=HYPERLINK(...)" must stay text (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- Who may export, and what ------------------------------------------------------------

def may_export(user):
    """Does ``user`` hold "customer.export" anywhere (scope or a direct grant)?"""
    if not is_active_user(user):
        return False
    return resolve_scope(user).holds_anywhere("customer.export") or bool(grant_ids(user, Customer, "export"))


def scope_key(user):
    """A fingerprint of what ``user`` may export now: a file written under one key is only
    handed out while the key is the same, so narrowing someone's scope also takes back the
    files written for the wider one."""
    scope = resolve_scope(user)
    if scope.covers_every_unit("customer.export"):
        return "all"
    units = sorted(scope.units("customer.export"))
    granted = sorted(grant_ids(user, Customer, "export"))
    text = f"u:{','.join(map(str, units))};g:{','.join(map(str, granted))}"
    return hashlib.sha256(text.encode()).hexdigest()


def filter_params(params):
    """The customer-list filters in ``params`` (a QueryDict or dict) as plain JSON ``{name:
    [values]}``; anything else (format, page, ...) is left out."""
    from .filters import CustomerFilter

    names = CustomerFilter.base_filters
    if isinstance(params, QueryDict):
        items = params.lists()
    else:
        items = ((key, value if isinstance(value, (list, tuple)) else [value]) for key, value in (params or {}).items())
    return {key: [str(v) for v in values] for key, values in items if key in names and any(str(v) for v in values)}


def as_querydict(filters):
    params = QueryDict(mutable=True)
    for key, values in (filters or {}).items():
        params.setlist(key, values)
    return params


def export_queryset(*, user, filters):
    """The customers ``user`` may export matching ``filters``, in the list's order. ValidationError
    for bad filter values."""
    return selectors.customer_list(user=user, params=as_querydict(filter_params(filters)), action="export")


def exceeds(queryset, limit):
    """More than ``limit`` rows? Counts at most ``limit + 1`` of them, so it stays cheap on a
    million-row scope."""
    return queryset.order_by()[: limit + 1].count() > limit


# --- Rows ----------------------------------------------------------------------------------

def _field_label(name):
    return capfirst(Customer._meta.get_field(name).verbose_name)


def headers():
    """Column titles in the active language."""
    return [
        "ID", _field_label("external_id"), _field_label("name"), _field_label("kind"), _field_label("credit_code"),
        _field_label("industry"), _field_label("size"), _field_label("grade"), _field_label("status"),
        capfirst(_("owning unit code")), _field_label("org_unit"), _field_label("account_manager"),
        _field_label("is_national_key_account"), _field_label("is_potential_key_account"), _field_label("group"),
        _field_label("phone"), _field_label("address"), _field_label("created_at"), _field_label("updated_at"),
    ]


# What a row reads: plain values over the joins, no model instances (several times faster
# at a million rows).
ROW_FIELDS = (
    "id", "external_id", "name", "kind", "credit_code", "industry", "size", "grade", "status",
    "org_unit__code", "org_unit__name", "account_manager__first_name", "account_manager__last_name",
    "account_manager__username", "is_national_key_account", "is_potential_key_account", "group__name",
    "phone", "address", "created_at", "updated_at",
)


class RowMaker:
    """Turns ROW_FIELDS tuples into lists of cell values, choice values as their labels. Labels
    are resolved once, in the language active when it is made: a streamed response is consumed
    after the view returns, and a Celery task has no request language."""

    def __init__(self):
        def labels(choices):
            return {value: str(label) for value, label in choices}

        self.kind = labels(Customer.Kind.choices)
        self.size = labels(Customer.Size.choices)
        self.status = labels(Customer.Status.choices)
        self.grade = labels(Grade.choices)
        self.industry = labels(Industry.choices)
        self.yes, self.no = str(_("Yes")), str(_("No"))
        self.tz = timezone.get_current_timezone()

    def local(self, value):
        return value.astimezone(self.tz).replace(tzinfo=None, microsecond=0)

    def __call__(self, values):
        (pk, external_id, name, kind, credit_code, industry, size, grade, status, unit_code, unit_name,
         first_name, last_name, username, national, potential, group, phone, address, created, updated) = values
        manager = f"{first_name or ''} {last_name or ''}".strip() or username or ""
        return [
            pk, external_id or "", name, self.kind.get(kind, kind), credit_code or "",
            self.industry.get(industry, industry), self.size.get(size, size), self.grade.get(grade, grade),
            self.status.get(status, status), unit_code, unit_name, manager,
            self.yes if national else self.no, self.yes if potential else self.no,
            group or "", phone, address, self.local(created), self.local(updated),
        ]


def rows(queryset):
    """Cell values of every customer of ``queryset``, read ``CHUNK`` rows at a time through a
    server-side cursor."""
    make = RowMaker()
    for values in queryset.values_list(*ROW_FIELDS).iterator(chunk_size=CHUNK):
        yield make(values)


# --- CSV -------------------------------------------------------------------------------------

class _Echo:
    def write(self, value):
        return value


def _csv_text(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ")
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # shown as text, never evaluated
    return value


def csv_chunks(header, values):
    """A CSV file as byte chunks: UTF-8 with a BOM (so Excel reads Chinese correctly), CRLF
    line ends, ``CSV_BATCH`` rows per chunk."""
    writer = csv.writer(_Echo())
    yield ("\ufeff" + writer.writerow(header)).encode()
    batch = []
    for row in values:
        batch.append(writer.writerow([_csv_text(value) for value in row]))
        if len(batch) >= CSV_BATCH:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


# --- XLSX ------------------------------------------------------------------------------------

def write_xlsx(header, values, target):
    """Write an XLSX workbook to ``target`` (a path or binary file) with openpyxl's write-only
    mode, which keeps rows on disk rather than in memory. Returns the number of rows."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=str(_("Customers"))[:31])
    sheet.freeze_panes = "A2"
    sheet.append(header)
    count = 0
    for row in values:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
        count += 1
    workbook.save(target)
    return count


def _xlsx_cell(sheet, value):
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters are not allowed in XLSX
        if value.startswith("="):
            cell = WriteOnlyCell(sheet, value)
            cell.data_type = "s"  # openpyxl would store it as a formula
            return cell
        return value
    if hasattr(value, "isoformat"):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    return value


# --- Responses -------------------------------------------------------------------------------

def file_name(fmt, when=None):
    return f"customers-{timezone.localtime(when):%Y%m%d-%H%M%S}.{fmt}"


def attachment(response, name):
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


def stream_response(queryset, fmt):
    """The export of ``queryset`` as a response that is written while it is sent (CSV), or from
    a temporary file (XLSX: a zip archive needs its end before it can be sent)."""
    header = [str(title) for title in headers()]
    if fmt == "csv":
        response = StreamingHttpResponse(csv_chunks(header, rows(queryset)), content_type=CONTENT_TYPES["csv"])
        return attachment(response, file_name("csv"))
    spool = tempfile.TemporaryFile()
    write_xlsx(header, rows(queryset), spool)
    spool.seek(0)
    response = FileResponse(spool, content_type=CONTENT_TYPES["xlsx"])
    return attachment(response, file_name("xlsx"))


def check_format(fmt):
    if fmt not in FORMATS:
        raise ValidationError({"format": [_("Choose csv or xlsx.")]})


def export_start(*, user, fmt, params, language=None):
    """Export the customer list ``user`` may export, filtered by ``params``: a streamed response
    when it has at most KAM_EXPORT_SYNC_LIMIT rows, else a new ExportJob (queued after commit).
    Returns ``(response, None)`` or ``(None, job)``. PermissionDenied without "customer.export",
    ValidationError for a bad format or filter."""
    check_format(fmt)
    if not may_export(user):
        raise PermissionDenied(_("You may not export customers."))
    queryset = export_queryset(user=user, filters=params)
    if exceeds(queryset, settings.KAM_EXPORT_SYNC_LIMIT):
        return None, job_create(user=user, fmt=fmt, params=params, language=language)
    return stream_response(queryset, fmt), None


# --- Background jobs ---------------------------------------------------------------------

def job_create(*, user, fmt, params, language=None):
    """A pending ExportJob for ``user``; the task that writes it is queued once this commits."""
    from kam.celery import enqueue_on_commit

    from .tasks import export_customers

    check_format(fmt)
    with transaction.atomic():
        job = ExportJob.objects.create(
            created_by=user, format=fmt, filters=filter_params(params),
            language=language or translation.get_language() or settings.LANGUAGE_CODE,
        )
        enqueue_on_commit(export_customers, job.pk)
    return job


def job_run(job_id):
    """Write the file of a pending or interrupted job (the Celery task's body). Safe to run
    twice: a finished job is left alone, an interrupted one starts again from the top. The
    export uses the creator's permissions as they are now."""
    job = ExportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
        return job
    user = job.created_by
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING, row_count=0)
    with translation.override(job.language or settings.LANGUAGE_CODE):
        if not may_export(user):
            return _job_failed(job, _("The creator of this export may no longer export customers."))
        try:
            queryset = export_queryset(user=user, filters=job.filters)
        except ValidationError as exc:
            return _job_failed(job, "; ".join(exc.messages))
        key = scope_key(user)
        with tempfile.TemporaryFile() as spool:
            count = _write(job, queryset, spool)
            spool.seek(0)
            old = job.file.name
            job.file.save(f"customers-{job.pk}.{job.format}", File(spool), save=False)
    if old and old != job.file.name:
        job.file.storage.delete(old)  # an earlier, interrupted run's file
    job.status, job.row_count, job.scope_key = ExportJob.Status.DONE, count, key
    job.finished_at, job.message = timezone.now(), ""
    job.save(update_fields=["file", "status", "row_count", "scope_key", "finished_at", "message"])
    return job


class _Progress:
    """Counts rows as they pass and records the count on the job every few chunks."""

    def __init__(self, job, values, every=CHUNK * 5):
        self.job, self.values, self.every, self.count = job, values, every, 0

    def __iter__(self):
        for row in self.values:
            self.count += 1
            if self.count % self.every == 0:
                ExportJob.objects.filter(pk=self.job.pk).update(row_count=self.count)
            yield row


def _write(job, queryset, spool):
    header = [str(title) for title in headers()]
    progress = _Progress(job, rows(queryset))
    if job.format == "csv":
        for chunk in csv_chunks(header, progress):
            spool.write(chunk)
    else:
        write_xlsx(header, progress, spool)
    return progress.count


def _job_failed(job, message):
    job.status, job.message, job.finished_at = ExportJob.Status.FAILED, str(message), timezone.now()
    job.save(update_fields=["status", "message", "finished_at"])
    return job


def job_mark_failed(job_id):
    """Record on the job that its task crashed for good (the details are in the worker's log)."""
    job = ExportJob.objects.filter(pk=job_id).exclude(status=ExportJob.Status.DONE).first()
    if job is not None:
        with translation.override(job.language or settings.LANGUAGE_CODE):
            _job_failed(job, _("The export failed. Try again, or ask your administrator if it keeps failing."))


def job_list(*, user):
    """The export jobs ``user`` may see: their own; every job for tenant admins."""
    if not is_active_user(user):
        return ExportJob.objects.none()
    jobs = ExportJob.objects.select_related("created_by")
    return jobs if user.is_superuser else jobs.filter(created_by=user)


def job_get(*, user, pk):
    """One job of ``job_list``; Http404 for anyone else's job or a missing id (same answer)."""
    try:
        return job_list(user=user).get(pk=pk)
    except (ExportJob.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def job_download(*, user, job):
    """The finished file of ``job`` as an attachment. PermissionDenied when ``user`` may no
    longer export or (the creator) now has another export scope than the file was written
    with; Http404 when there is no file (yet, or any more)."""
    if not may_export(user):
        raise PermissionDenied(_("You may no longer export customers."))
    if job.status != ExportJob.Status.DONE or not job.file:
        raise Http404
    if not user.is_superuser and job.scope_key != scope_key(user):
        raise PermissionDenied(_("Your access has changed since this export was made; export the list again."))
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type=CONTENT_TYPES[job.format])
    return attachment(response, file_name(job.format, job.finished_at))


def jobs_cleanup(*, days=None, now=None):
    """Delete export jobs (and their files) finished or created more than ``days`` days ago
    (default KAM_EXPORT_RETENTION_DAYS). Returns how many jobs went; safe to run twice."""
    days = settings.KAM_EXPORT_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = ExportJob.objects.filter(created_at__lt=cutoff)
    deleted = 0
    for job in old.iterator():
        if job.file:
            job.file.storage.delete(job.file.name)
        job.delete()
        deleted += 1
    return deleted

