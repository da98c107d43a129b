"""One pass over an import file: the dry run and the commit are the same pass, in one
transaction; the dry run rolls it back at the end, the commit keeps it only when no row is
invalid. So the report of a dry run is exactly what the commit would do, and an invalid file
(or a failure, or a killed process) writes nothing at all.

    read file (reader.py) -> check rows in Python (rows.py) -> COPY chunks into staging
    -> duplicates, conflicts and scope as joins (staging.py) -> INSERT + UPDATE (commit only)

Memory stays flat: rows are handled ``CHUNK`` at a time and errors are spooled to a temporary
file, so a million-row file (or a million errors) never sits in the process.
"""
import tempfile
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kam import history
from key_accounts.models import GradingRule, ImportRowError
from key_accounts.services import acting_unit
from org_hierarchy.models import OrgUnit
from permissions.scope import resolve_scope

from . import staging as set_based
from .reader import FileProblem, open_table
from .rows import Context, RowReader, SpecProblem
from .spec import check_spec

CHUNK = 20_000
# A killed client is noticed by PostgreSQL during a long statement too, not only after it.
CONNECTION_CHECK_MS = 1000


@dataclass
class Outcome:
    committed: bool = False
    rows: int = 0  # data rows read
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    encoding: str = ""
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.errors == 0


class ErrorLog:
    """Errors ``(line, column, reason, value)`` spooled in COPY format, then saved in one COPY."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+", encoding="utf-8")
        self.count = 0

    @staticmethod
    def _text(value):
        return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ").replace("\r", " ")

    def add(self, line, column, reason, value=""):
        self.file.write(f"{int(line)}\t{self._text(column)[:200]}\t{self._text(reason)}\t{self._text(value)[:200]}\n")
        self.count += 1

    def extend(self, errors):
        for error in errors:
            self.add(*error)

    def save(self, job_id):
        """Replace the job's stored errors with these (autocommit or the caller's transaction)."""
        ImportRowError.objects.filter(job_id=job_id).delete()
        if not self.count:
            return
        self.file.seek(0)
        table = ImportRowError._meta.db_table
        prefix = f"{int(job_id)}\t"
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f'COPY {table} (job_id, line, "column", reason, value) FROM STDIN') as copy:
                batch = []
                for line in self.file:
                    batch.append(prefix + line)
                    if len(batch) >= 10_000:
                        copy.write("".join(batch))
                        batch = []
                copy.write("".join(batch))

    def close(self):
        self.file.close()


def load_context(actor, spec):
    """Units, the importer's scope, users and grading rules: what rows are checked against."""
    scope = resolve_scope(actor)
    units = {code: (pk, active) for pk, code, active in OrgUnit.objects.values_list("pk", "code", "is_active")}
    add_units = None if scope.covers_every_unit("customer.add") else scope.units("customer.add")
    users = {}
    if any(e["field"] == "account_manager" for e in spec["columns"].values()) or "account_manager" in spec["fixed"]:
        users = {name.lower(): pk for pk, name in get_user_model().objects.filter(is_active=True).values_list("pk", "username")}
    return Context(units=units, add_units=add_units, users=users, rules=list(GradingRule.objects.all())), scope


def _acting_unit(actor, spec, context):
    code = spec["fixed"].get("org_unit")
    unit_id = context.units.get(code, (None,))[0] if code else None
    return acting_unit(actor, unit_id) if unit_id else None


def _chunks(rows, size):
    chunk = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_import(*, actor, path, name, raw_spec, commit, job_id=None, progress=None, errors=None):
    """Check (and with ``commit``, write) the file at ``path`` as ``actor``.

    Returns an Outcome; errors go to ``errors`` (an ErrorLog). Writes only when ``commit`` and
    nothing is invalid, in one transaction with history context (actor, acting unit,
    via="import", the job id)."""
    started = time.perf_counter()
    outcome = Outcome()
    errors = errors if errors is not None else ErrorLog()
    spec = check_spec(raw_spec)
    context, scope = load_context(actor, spec)
    mark = time.perf_counter

    def step(label, since):
        outcome.timings[label] = round(outcome.timings.get(label, 0) + mark() - since, 3)

    with transaction.atomic():
        with history.acting(actor, unit=_acting_unit(actor, spec, context), via="import", import_job=job_id):
            with connection.cursor() as cursor:
                history.attach(cursor)
                cursor.execute(f"SET LOCAL client_connection_check_interval = {CONNECTION_CHECK_MS}")
                cursor.execute("SET LOCAL work_mem = '64MB'")
                raw = cursor.cursor
                try:
                    table = open_table(path, name, spec)
                except FileProblem as problem:
                    errors.add(problem.line, "", problem.reason)
                    outcome.errors = errors.count
                    transaction.set_rollback(True)
                    return outcome
                with table:
                    outcome.encoding = table.encoding
                    if progress:
                        progress.start(table.total_estimate)
                    try:
                        reader = RowReader(spec, table.header, context)
                    except SpecProblem as problem:
                        errors.add(1, problem.column, problem.reason)
                        outcome.errors = errors.count
                        transaction.set_rollback(True)
                        return outcome
                    stage = set_based.Staging(raw, reader.fields, key=spec["key"], with_phones=reader.with_phones)
                    stage.create()
                    read = reader.read
                    try:
                        for chunk in _chunks(table.rows, CHUNK):
                            t0 = mark()
                            good = []
                            for line, cells in chunk:
                                values, problems = read(line, cells)
                                if problems:
                                    errors.extend(problems)
                                else:
                                    values.insert(0, line)
                                    good.append(values)
                            outcome.rows += len(chunk)
                            step("read_check", t0)
                            t0 = mark()
                            stage.copy(good)
                            step("copy", t0)
                            if progress:
                                progress.rows(outcome.rows)
                    except FileProblem as problem:
                        errors.add(problem.line, "", problem.reason)

                if progress:
                    progress.phase("matching")
                t0 = mark()
                for line, field_name, first in stage.duplicates():
                    errors.add(line, reader.column_of(field_name), _("The same %(field)s as line %(first)d.") % {
                        "field": field_name.replace("_", " "), "first": first})
                stage.match()
                for line, field_name in stage.conflicts():
                    errors.add(line, reader.column_of(field_name), set_based.describe("conflict", field_name))
                if not actor.is_superuser:
                    if not scope.covers_every_unit("customer.change"):
                        for line in stage.outside(scope.units("customer.change")):
                            errors.add(line, reader.column_of(spec["key"]), set_based.describe("outside", spec["key"]))
                    if not scope.covers_every_unit("customer.assign"):
                        for line in stage.moved_outside(scope.units("customer.assign")):
                            errors.add(line, reader.column_of("org_unit"), set_based.describe("moved", "org_unit"))
                outcome.created, outcome.updated, outcome.unchanged = stage.counts()
                step("match_check", t0)
                outcome.errors = errors.count
                if errors.count or not commit:
                    transaction.set_rollback(True)
                else:
                    if progress:
                        progress.phase("writing")
                    t0 = mark()
                    outcome.created, outcome.updated = stage.write(timezone.now())
                    step("write", t0)
                    outcome.committed = True
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome

