"""The org tree from a CSV file: ``code,name,parent_code,level`` (other columns are ignored).

``level`` is a level code (``city``) or a rank (``2``); a blank ``parent_code`` makes a root.
The file is UTF-8, with or without a byte-order mark. The import is idempotent by code: a
known code whose name or parent differs is renamed or moved (audited like any reorganisation),
an identical one is left alone, so importing the same file twice changes nothing the second
time. The whole file is checked before anything is written: any bad row (unknown parent or
level, duplicate code, cycle, blank cell, bytes that are not UTF-8, ...) is reported with its
line and column, and nothing at all is written.
"""
import csv
import io
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_lazy

from . import services
from .models import OrgAuditEntry, OrgLevel, OrgUnit

COLUMNS = ("code", "name", "parent_code", "level")
# HQ -> 31 provinces -> 342 cities of mainland China (see data/README.md): the demo tenant's tree.
SHIPPED_TREE = Path(__file__).resolve().parent / "data" / "cn_org_tree_hq_provinces_cities.csv"
# What --create-levels adds to a tenant that has no levels yet (the shipped CSV's ranks 0/1/2).
DEFAULT_LEVELS = (
    ("hq", gettext_lazy("Headquarters"), 0),
    ("province", gettext_lazy("Province"), 1),
    ("city", gettext_lazy("City"), 2),
)


@dataclass
class RowError:
    line: int  # in the file, the header being line 1; for ``rows=``, the row's index + 2
    column: str
    reason: str

    def __str__(self):
        where = _("line %(line)d") % {"line": self.line}
        return f"{where}, {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"


@dataclass
class ImportReport:
    dry_run: bool = False
    rows: int = 0
    levels_created: list = field(default_factory=list)  # level codes
    created: list = field(default_factory=list)  # unit codes
    moved: list = field(default_factory=list)  # {"code", "old_parent", "new_parent"}
    renamed: list = field(default_factory=list)  # {"code", "old_name", "new_name"}
    unchanged: int = 0
    errors: list = field(default_factory=list)  # RowError

    @property
    def ok(self):
        return not self.errors

    @property
    def changes(self):
        return len(self.levels_created) + len(self.created) + len(self.moved) + len(self.renamed)

    def as_dict(self):
        return {**asdict(self), "ok": self.ok, "changes": self.changes}

    def error(self, line, column, reason):
        self.errors.append(RowError(line, column, reason))

    def lines(self):
        """The report for a person: a summary line, then each move, rename and error."""
        counts = {
            "rows": self.rows, "created": len(self.created), "moved": len(self.moved),
            "renamed": len(self.renamed), "unchanged": self.unchanged, "levels": len(self.levels_created),
        }
        if self.errors:
            yield _("%(count)d errors in %(rows)d rows: nothing was imported.") % {"count": len(self.errors), "rows": self.rows}
            yield from (str(error) for error in sorted(self.errors, key=lambda e: (e.line, e.column)))
            return
        summary = _("%(rows)d rows: %(created)d units created, %(moved)d moved, %(renamed)d renamed, "
                    "%(unchanged)d unchanged; %(levels)d levels created.") % counts
        yield (_("Dry run, nothing written. %(summary)s") % {"summary": summary}) if self.dry_run else summary
        for move in self.moved:
            yield _("moved %(code)s: %(old_parent)s -> %(new_parent)s") % {k: v or "-" for k, v in move.items()}
        for rename in self.renamed:
            yield _("renamed %(code)s: %(old_name)s -> %(new_name)s") % rename


@dataclass
class Row:
    line: int
    code: str
    name: str
    parent_code: str | None
    level: str  # level code


# --- Reading ----------------------------------------------------------------------------------

def _decode(data, report):
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            report.error(number, "", _("not valid UTF-8 (byte 0x%(byte)02X at position %(pos)d); save the file as UTF-8.")
                         % {"byte": raw[exc.start], "pos": exc.start + 1})
    return None


def _read_file(file, report):
    """``[(line, {column: cell})]`` from a path, bytes, text or an open file."""
    if isinstance(file, (str, Path)):
        data = Path(file).read_bytes()
    elif isinstance(file, (bytes, bytearray)):
        data = bytes(file)
    else:
        data = file.read()
    text = data if isinstance(data, str) else _decode(data, report)
    if text is None:
        return []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = None
    entries = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            missing = [column for column in COLUMNS if column not in header]
            if missing:
                report.error(reader.line_num, "", _("missing columns: %(columns)s (expected %(expected)s).")
                             % {"columns": ", ".join(missing), "expected": ",".join(COLUMNS)})
                return []
            continue
        entries.append((reader.line_num, dict(zip(header, cells))))
    if header is None:
        report.error(1, "", _("the file is empty (expected the header %(expected)s).") % {"expected": ",".join(COLUMNS)})
    return entries


def _cell(row, column):
    value = row.get(column)
    return "" if value is None else str(value).strip()


# --- Checking ---------------------------------------------------------------------------------

class Plan:
    """The file checked against the tenant's tree: what to create, move and rename."""

    def __init__(self, *, actor, create_levels, report):
        self.actor, self.report = actor, report
        self.existing = {unit.code: unit for unit in OrgUnit.objects.select_related("level", "parent")}
        self.ranks = dict(OrgLevel.objects.values_list("code", "rank"))
        self.new_levels = []
        if create_levels and not self.ranks:
            self.new_levels = list(DEFAULT_LEVELS)
            self.ranks = {code: rank for code, _name, rank in DEFAULT_LEVELS}
        self.by_rank = {str(rank): code for code, rank in self.ranks.items()}
        self.rows = {}  # code -> Row
        self.parents = {code: unit.parent.code if unit.parent else None for code, unit in self.existing.items()}
        self.scope, self.hidden = None, set()  # hidden: existing codes the user may not view
        if services.is_user(actor) and not actor.is_superuser:
            from permissions.scope import resolve_scope

            self.scope = resolve_scope(actor)
            view = self.scope.units("org_unit.view")
            self.hidden = {code for code, unit in self.existing.items() if unit.pk not in view}

    def level_of(self, cell):
        if cell in self.ranks:
            return cell
        return self.by_rank.get(cell)

    def check(self, entries):
        report = self.report
        if not self.ranks:
            report.error(1, "level", _("the tenant has no levels yet: create them first, or import with --create-levels."))
            return
        seen = {}
        for line, cells in entries:
            row = self._check_cells(line, cells, seen)
            if row is not None:
                self.rows[row.code] = row
        for row in self.rows.values():
            self._check_parent(row)
        self.parents.update({code: row.parent_code for code, row in self.rows.items()})
        self._check_cycles()
        for row in self.rows.values():
            self._check_rank(row)
        if self.scope is not None:
            for row in self.rows.values():
                self._check_permission(row)

    def _check_cells(self, line, cells, seen):
        report, values = self.report, {column: _cell(cells, column) for column in COLUMNS}
        limits = {"code": OrgUnit._meta.get_field("code").max_length, "name": OrgUnit._meta.get_field("name").max_length}
        bad = False
        for column in ("code", "name", "level"):
            if not values[column]:
                report.error(line, column, _("required, but blank."))
                bad = True
            elif len(values[column]) > limits.get(column, 10**6):
                report.error(line, column, _("at most %(max)d characters.") % {"max": limits[column]})
                bad = True
        code = values["code"]
        if code and code in seen:
            report.error(line, "code", _("“%(code)s” already appears on line %(line)d.") % {"code": code, "line": seen[code]})
            return None
        seen.setdefault(code, line)
        level = self.level_of(values["level"]) if values["level"] else None
        if values["level"] and level is None:
            known = ", ".join(f"{code} ({rank})" for code, rank in sorted(self.ranks.items(), key=lambda item: item[1]))
            report.error(line, "level", _("unknown level “%(level)s” (known: %(known)s).") % {"level": values["level"], "known": known})
            bad = True
        unit = self.existing.get(code)
        if unit is not None and level is not None and unit.level.code != level:
            report.error(line, "level", _("%(code)s is at level “%(level)s”; the import does not change a unit's level.")
                         % {"code": code, "level": unit.level.code})
            bad = True
        if bad:
            return None
        return Row(line, code, values["name"], values["parent_code"] or None, level)

    def _known(self, code):
        return code in self.rows or (code in self.existing and code not in self.hidden)

    def _check_parent(self, row):
        report, unit = self.report, self.existing.get(row.code)
        if unit is not None and unit.code in self.hidden:
            report.error(row.line, "code", _("the code “%(code)s” is already used.") % {"code": row.code})
            return
        if unit is not None and not self._differs(row, unit):
            return  # unchanged: left alone whatever its parent is
        if unit is not None and not unit.is_active:
            report.error(row.line, "code", _("%(code)s is closed and cannot be changed.") % {"code": row.code})
        if row.parent_code is None:
            return
        parent = self.existing.get(row.parent_code)
        if row.parent_code == row.code:
            report.error(row.line, "parent_code", _("a unit cannot be its own parent."))
        elif not self._known(row.parent_code):
            message = _("unknown parent “%(code)s”: no unit or row has this code.") % {"code": row.parent_code}
            report.error(row.line, "parent_code", message)
        elif parent is not None and not parent.is_active:
            report.error(row.line, "parent_code", _("the parent %(code)s is closed.") % {"code": row.parent_code})

    @staticmethod
    def _differs(row, unit):
        return unit is None or unit.name != row.name or (unit.parent.code if unit.parent else None) != row.parent_code

    def _check_cycles(self):
        found = set()
        for start in self.rows:
            chain, code = [], start
            while code is not None and code not in chain:
                chain.append(code)
                code = self.parents.get(code)
            if code is None:
                continue
            cycle = chain[chain.index(code):]
            if frozenset(cycle) in found:
                continue
            found.add(frozenset(cycle))
            text = " -> ".join([*cycle, cycle[0]])
            for member in cycle:
                row = self.rows.get(member)
                if row is not None and row.parent_code != row.code:  # "its own parent" is reported already
                    self.report.error(row.line, "parent_code", _("cycle: %(cycle)s.") % {"cycle": text})

    def _rank(self, code):
        row = self.rows.get(code)
        return self.ranks[row.level] if row else self.existing[code].level.rank

    def _check_rank(self, row):
        if row.parent_code is None or not self._known(row.parent_code) or row.parent_code == row.code:
            return
        if self._rank(row.code) <= self._rank(row.parent_code):
            self.report.error(row.line, "level", _("level “%(level)s” must be deeper than its parent %(parent)s's level.")
                              % {"level": row.level, "parent": row.parent_code})

    def _check_permission(self, row):
        unit, allows = self.existing.get(row.code), self.scope.allows
        if (unit is not None and not self._differs(row, unit)) or row.code in self.hidden:
            return
        if row.parent_code is not None and not self._known(row.parent_code):
            return  # reported as unknown: never say more about a unit the user cannot see
        if unit is not None and not allows("org_unit.change", unit.pk):
            self.report.error(row.line, "code", _("you may not change %(code)s.") % {"code": row.code})
        if unit is not None and (unit.parent.code if unit.parent else None) == row.parent_code:
            return
        anchor, passed = row.parent_code, set()
        while anchor is not None and anchor not in self.existing:  # the nearest existing ancestor
            if anchor in passed:
                return  # a cycle, reported already
            passed.add(anchor)
            anchor = self.parents.get(anchor)
        if anchor is None:
            message = _("only a tenant admin can add or move units at the top of the tree.")
            self.report.error(row.line, "parent_code", message)
        elif not allows("org_unit.add", self.existing[anchor].pk):
            self.report.error(row.line, "parent_code", _("you may not add units under %(code)s.") % {"code": anchor})

    def depth(self, code):
        depth = 0
        while (code := self.parents.get(code)) is not None:
            depth += 1
        return depth


# --- Writing ----------------------------------------------------------------------------------

class RowFailed(Exception):
    """A service refused a row the checks had passed (a rule they do not know yet)."""

    def __init__(self, line, error):
        super().__init__(line, error)
        self.line, self.error = line, error


@contextmanager
def _row(row):
    try:
        yield
    except ValidationError as exc:
        raise RowFailed(row.line, exc) from exc


def _apply(plan, report, actor):
    now = timezone.now()
    for code, name, rank in plan.new_levels:
        services.create_level(actor=actor, code=code, name=str(name), rank=rank)
        report.levels_created.append(code)
    levels = {level.code: level for level in OrgLevel.objects.all()}
    order = sorted(plan.rows.values(), key=lambda row: (plan.depth(row.code), row.code))
    units = dict(plan.existing)  # parents by code; treebeard re-reads a parent's path itself when adding under it
    for row in order:
        if row.code not in plan.existing:
            with _row(row):
                units[row.code] = services.create_unit(
                    actor=actor, code=row.code, name=row.name, level=levels[row.level],
                    parent=units[row.parent_code] if row.parent_code else None, now=now, via="import",
                )
            report.created.append(row.code)
    for row in order:
        unit = plan.existing.get(row.code)
        if unit is not None and (unit.parent.code if unit.parent else None) != row.parent_code:
            unit = OrgUnit.objects.select_related("parent", "level").get(pk=unit.pk)  # earlier moves shift paths
            parent = OrgUnit.objects.select_related("level").get(code=row.parent_code) if row.parent_code else None
            old = unit.parent.code if unit.parent else None
            with _row(row):
                services.move_unit(actor=actor, unit=unit, new_parent=parent, now=now, via="import")
            report.moved.append({"code": row.code, "old_parent": old, "new_parent": row.parent_code})
    for row in order:
        unit = plan.existing.get(row.code)
        if unit is not None and unit.name != row.name:
            with _row(row):
                services.rename_unit(actor=actor, unit=OrgUnit.objects.get(pk=unit.pk), name=row.name, via="import")
            report.renamed.append({"code": row.code, "old_name": unit.name, "new_name": row.name})


def _plan_only(plan, report):
    """What _apply would do, for a dry run."""
    report.levels_created = [code for code, _name, _rank in plan.new_levels]
    for row in plan.rows.values():
        unit = plan.existing.get(row.code)
        if unit is None:
            report.created.append(row.code)
            continue
        old_parent = unit.parent.code if unit.parent else None
        if old_parent != row.parent_code:
            report.moved.append({"code": row.code, "old_parent": old_parent, "new_parent": row.parent_code})
        if unit.name != row.name:
            report.renamed.append({"code": row.code, "old_name": unit.name, "new_name": row.name})


def import_org_tree(*, actor, rows=None, file=None, dry_run=False, create_levels=False):
    """Import an org tree; returns an ImportReport (``report.ok``, ``report.errors``).

    ``file`` is a path, bytes or an open file; ``rows`` an iterable of dicts with the same
    columns. ``create_levels`` adds the levels hq/province/city (ranks 0/1/2) when the tenant has
    none. A user ``actor`` needs "org_unit.add" where units are added and "org_unit.change" on
    units that change; new roots need a tenant admin. All or nothing, in one transaction."""
    report = ImportReport(dry_run=dry_run)
    if (rows is None) == (file is None):
        raise TypeError("import_org_tree() takes rows= or file=")
    if file is not None:
        entries = _read_file(file, report)
    else:
        entries = [(index + 2, {str(k).strip().lower(): v for k, v in row.items()}) for index, row in enumerate(rows)]
    report.rows = len(entries)
    if not report.errors:
        try:
            _import(entries, report, actor=actor, dry_run=dry_run, create_levels=create_levels)
        except RowFailed as failed:  # rolled back: nothing was written
            report.created, report.moved, report.renamed, report.levels_created = [], [], [], []
            for column, messages in failed.error.message_dict.items():
                report.error(failed.line, column, " ".join(messages))
    report.errors.sort(key=lambda error: (error.line, error.column))
    return report


@transaction.atomic
def _import(entries, report, *, actor, dry_run, create_levels):
    services.lock_tree()  # the tree cannot change between the checks and the writes
    plan = Plan(actor=actor, create_levels=create_levels, report=report)
    plan.check(entries)
    if report.errors:
        return
    if dry_run:
        _plan_only(plan, report)
    else:
        _apply(plan, report, actor)
    report.unchanged = len(plan.rows) - len(report.created) - len({c["code"] for c in report.moved + report.renamed})
    if report.changes and not dry_run:
        services.audit(actor, OrgAuditEntry.Action.IMPORTED, None, rows=report.rows, created=len(report.created),
                       moved=len(report.moved), renamed=len(report.renamed), levels_created=report.levels_created)
        services.scopes_changed()
