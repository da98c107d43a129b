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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from kam import history
from key_accounts.models import GradingRule, ImportRowError
from key_accounts.services import acting_unit
from org_hierarchy.models import OrgUnit
from permissions.models import Membership
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
    """The unit the importer acts from, for the history: theirs over the chosen unit; for a
    file naming units row by row, their highest unit where they may add customers."""
    code = spec["fixed"].get("org_unit")
    unit_id = context.units.get(code, (None,))[0] if code else None
    if unit_id:
        return acting_unit(actor, unit_id)
    for membership in Membership.objects.filter(user=actor, unit__is_active=True).select_related("unit", "role") \
            .order_by("unit__depth", "unit__path"):
        if "customer.add" in membership.role.permissions:
            return membership.unit
    return None


def _chunks(rows, size):
    chunk = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_chunk(chunk, reader, errors):
    """The chunk's good rows as COPY text for staging (formatted here, off the writing thread,
    which only sends it); the bad ones' errors go to ``errors``."""
    good = []
    read = reader.read
    for line, cells in chunk:
        values, problems = read(line, cells)
        if problems:
            errors.extend(problems)
        else:
            values.insert(0, line)
            good.append(values)
    return set_based.Staging.payload(good)


class _Database:
    """The database half of the pass, in a thread of its own: while it stages, checks and
    writes chunk N on the import's connection, the caller reads and checks chunk N+1 in Python
    (the two halves take similar time, and the machine has more than one core).

    Only this thread uses the connection while a chunk is out; findings come back as
    ``(kind, line, field)`` and are worded by the caller (translations are per thread)."""

    def __init__(self, stage, spec, actor, scope, commit, timings):
        self.stage, self.spec, self.actor, self.scope, self.timings = stage, spec, actor, scope, timings
        self.writing = commit  # until the first problem: then the rest is only checked
        self.counts = [0, 0, 0]
        self.findings = []
        self.pending = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kam-import")

    def submit(self, payload, invalid_rows_so_far):
        self.wait()
        if invalid_rows_so_far or self.findings:
            self.writing = False
        self.pending = self.pool.submit(self._chunk, payload, self.writing)

    def wait(self):
        """Wait for the chunk that is out; its exception, if any, is raised here."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self):
        self.pool.shutdown(wait=True)

    def _chunk(self, payload, write):
        started = time.perf_counter()
        stage, scope, spec, timings = self.stage, self.scope, self.spec, self.timings

        def lap(label, since):
            now = time.perf_counter()
            timings[label] = round(timings.get(label, 0) + now - since, 3)
            return now

        stage.load(payload)
        t0 = lap("stage", started)
        repeats = stage.repeats_inside()
        stage.match()
        t0 = lap("match", t0)
        found = [("conflict", line, field_name) for line, field_name in stage.conflicts()]
        if not self.actor.is_superuser:
            if not scope.covers_every_unit("customer.change"):
                found += [("outside", line, spec["key"]) for line in stage.outside(scope.units("customer.change"))]
            if not scope.covers_every_unit("customer.assign"):
                found += [("moved", line, "org_unit") for line in stage.moved_outside(scope.units("customer.assign"))]
        if write and not found and not repeats and not stage.touched():
            lap("checks", t0)
            counts = stage.write(timings)
        else:
            # Nothing more is written: the transaction will be rolled back; counts as checked.
            self.writing = False
            counts = stage.counts()
            lap("checks", t0)
        self.counts = [a + b for a, b in zip(self.counts, counts)]
        self.findings += found
        lap("database", started)


def run_import(*, actor, path, name, raw_spec, commit, job_id=None, progress=None, errors=None):
    """Check (and with ``commit``, write) the file at ``path`` as ``actor``.

    Returns an Outcome; errors go to ``errors`` (an ErrorLog). The whole pass is one
    transaction with history context (actor, acting unit, via="import", the job id). A commit
    writes chunk by chunk as it reads, stops writing at the first invalid row (then only
    checks the rest, for a complete report) and keeps its writes only when no row was invalid;
    a dry run never writes."""
    started = time.perf_counter()
    outcome = Outcome()
    errors = errors if errors is not None else ErrorLog()
    spec = check_spec(raw_spec)
    context, scope = load_context(actor, spec)
    timings = outcome.timings
    mark = time.perf_counter

    def lap(label, since):
        timings[label] = round(timings.get(label, 0) + mark() - since, 3)
        return mark()

    def give_up(line, column, reason):
        errors.add(line, column, reason)
        outcome.errors = errors.count
        transaction.set_rollback(True)
        return outcome

    with transaction.atomic():
        with history.acting(actor, unit=_acting_unit(actor, spec, context), via="import", import_job=job_id):
            with connection.cursor() as cursor:
                history.attach(cursor)
                cursor.execute(f"SET LOCAL client_connection_check_interval = {CONNECTION_CHECK_MS}")
                cursor.execute("SET LOCAL work_mem = '64MB'")
                # Compiling the statements (the grouping of a whole file's keys) costs more than it saves.
                cursor.execute("SET LOCAL jit = off")
                try:
                    table = open_table(path, name, spec)
                except FileProblem as problem:
                    return give_up(problem.line, "", problem.reason)
                with table:
                    outcome.encoding = table.encoding
                    try:
                        reader = RowReader(spec, table.header, context)
                    except SpecProblem as problem:
                        return give_up(1, problem.column, problem.reason)
                    if progress:
                        progress.start(table.total_estimate, "writing" if commit else "checking")
                    stage = set_based.Staging(cursor.cursor, reader.fields, key=spec["key"], with_phones=reader.with_phones,
                                              now=timezone.now())
                    stage.create()
                    stage.prefer_index_lookups()
                    if commit:
                        stage.bulk_gin()
                    database = _Database(stage, spec, actor, scope, commit, timings)
                    try:
                        t0 = mark()
                        for chunk in _chunks(table.rows, CHUNK):
                            t0 = lap("read", t0)
                            payload = _check_chunk(chunk, reader, errors)
                            t0 = lap("check", t0)
                            database.submit(payload, invalid_rows_so_far=errors.count > 0)
                            t0 = lap("waiting", t0)
                            if progress:
                                progress.rows(outcome.rows)  # rows the database has finished
                            outcome.rows += len(chunk)
                    except FileProblem as problem:
                        errors.add(problem.line, "", problem.reason)
                    finally:
                        t0 = mark()
                        try:
                            database.wait()
                        finally:
                            database.close()
                        lap("waiting", t0)
                if progress:
                    progress.rows(outcome.rows)
                for kind, line, field_name in database.findings:
                    errors.add(line, reader.column_of(field_name), set_based.describe(kind, field_name))
                stage.prefer_index_lookups(False)
                for line, field_name, first in stage.duplicates():
                    errors.add(line, reader.column_of(field_name), set_based.describe("duplicate", field_name) % {"first": first})
                outcome.created, outcome.updated, outcome.unchanged = database.counts
                outcome.errors = errors.count
                if commit and not errors.count and not database.writing:
                    # Writing stopped without a reported reason: never keep a partial import.
                    raise RuntimeError("the import stopped writing without finding an invalid row")
                if errors.count or not commit:
                    transaction.set_rollback(True)
                else:
                    t0 = mark()
                    stage.clean_gin()
                    lap("gin", t0)
                    stage.drop()
                    outcome.committed = True
                t0 = mark()
    if outcome.committed:
        lap("commit", t0)  # deferred foreign-key checks run here
    outcome.seconds = round(time.perf_counter() - started, 3)
    return outcome
