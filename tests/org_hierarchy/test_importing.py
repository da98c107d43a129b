"""`kam org import`: the shipped HQ -> provinces -> cities tree, idempotent re-imports,
re-orgs through the file, and malformed files that report each bad row and write nothing."""
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from kam.demo import load_demo_tree
from org_hierarchy import services

from org_hierarchy.importing import SHIPPED_TREE, import_org_tree
from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit, OrgUnitParentPeriod

from tests.support.processes import child_env

from .conftest import assert_tree_consistent, make_user, member, snapshot

pytestmark = pytest.mark.django_db

HEADER = "code,name,parent_code,level,note\n"
SMALL = HEADER + "HQ,总部,,hq,\nZJ,浙江,HQ,province,\nHZ,杭州,ZJ,city,\nNB,宁波,ZJ,city,\nJS,江苏,HQ,province,\n"


def run(text, **kwargs):
    data = text.encode("utf-8") if isinstance(text, str) else text
    kwargs.setdefault("actor", "pytest")
    return import_org_tree(file=io.BytesIO(data), **kwargs)


def errors(report):
    return [(e.line, e.column) for e in report.errors]


@pytest.fixture
def levels(in_alpha):
    for rank, code in enumerate(["hq", "province", "city"]):
        OrgLevel.objects.create(code=code, name=code.title(), rank=rank)


def test_the_shipped_tree_imports_once_and_then_changes_nothing(in_alpha):
    report = import_org_tree(actor="cli:ops", file=SHIPPED_TREE, create_levels=True)
    assert report.ok, report.errors[:5]
    assert (report.rows, len(report.created), report.levels_created) == (374, 374, ["hq", "province", "city"])
    assert OrgUnit.objects.count() == 374
    by_level = {code: OrgUnit.objects.filter(level__code=code).count() for code in ("hq", "province", "city")}
    assert by_level == {"hq": 1, "province": 31, "city": 342}
    hq = OrgUnit.objects.get(code="HQ")
    assert hq.is_root() and OrgUnit.objects.filter(parent=hq).count() == 31
    assert OrgUnit.objects.get(code="3301").parent.code == "33"  # 杭州市 under 浙江省
    assert OrgUnitParentPeriod.objects.filter(valid_to__isnull=True).count() == 374
    assert OrgAuditEntry.objects.filter(action="created", detail__via="import").count() == 374
    summary = OrgAuditEntry.objects.get(action="imported")
    assert summary.actor_label == "cli:ops" and summary.detail["created"] == 374
    assert_tree_consistent()

    before = snapshot()
    again = import_org_tree(actor="cli:ops", file=SHIPPED_TREE, create_levels=True)
    assert again.ok and again.changes == 0 and again.unchanged == 374
    assert snapshot() == before  # not even an audit entry


def test_a_dry_run_reports_and_writes_nothing(levels):
    report = run(SMALL, dry_run=True)
    assert report.ok and report.dry_run and sorted(report.created) == ["HQ", "HZ", "JS", "NB", "ZJ"]
    assert "Dry run" in next(report.lines())
    assert OrgUnit.objects.count() == 0 and OrgAuditEntry.objects.count() == 0


def test_a_reimport_renames_and_moves_through_the_reorganisation_rules(levels):
    run(SMALL)
    changed = SMALL.replace("NB,宁波,ZJ", "NB,宁波市,JS").replace("HZ,杭州,", "HZ,杭州市,")
    report = run(changed, actor="cli:ops")
    assert report.ok and report.created == [] and report.unchanged == 3
    assert report.moved == [{"code": "NB", "old_parent": "ZJ", "new_parent": "JS"}]
    assert {r["code"] for r in report.renamed} == {"HZ", "NB"}
    nb = OrgUnit.objects.get(code="NB")
    assert nb.parent.code == "JS" and nb.name == "宁波市" and nb.path.startswith(nb.parent.path)
    assert list(nb.parent_periods.order_by("valid_from").values_list("parent__code", flat=True)) == ["ZJ", "JS"]
    move = OrgAuditEntry.objects.get(action="moved", unit=nb)
    assert move.actor_label == "cli:ops" and move.detail["via"] == "import"
    assert_tree_consistent()


def test_a_city_moves_to_a_province_created_by_the_same_file(levels):
    run(HEADER + "HQ,HQ,,hq,\nA,A,HQ,province,\nB,B,A,city,\n")
    report = run(HEADER + "B,B,P3,city,\nP3,P3,HQ,province,\n")
    assert report.ok and report.created == ["P3"] and report.moved == [{"code": "B", "old_parent": "A", "new_parent": "P3"}]
    assert OrgUnit.objects.get(code="B").parent.code == "P3"
    assert_tree_consistent()


def test_bom_extra_columns_codes_and_ranks_are_accepted(levels):
    text = "\ufeffCode , Name,parent_code,LEVEL,note,extra\nHQ,HQ,,0,x,y\nZJ,浙江,HQ,province,,\n\n"
    report = run(text)
    assert report.ok and sorted(report.created) == ["HQ", "ZJ"]
    assert OrgUnit.objects.get(code="ZJ").level.code == "province"


def test_rows_can_be_given_directly(levels):
    report = import_org_tree(actor="pytest", rows=[{"code": "HQ", "name": "HQ", "parent_code": "", "level": "hq"}])
    assert report.ok and report.created == ["HQ"]


@pytest.mark.parametrize("text, expected, says", [
    (SMALL + "XM,厦门,FJ,city,\n", [(7, "parent_code")], "unknown parent"),
    (SMALL + "HZ,杭州2,ZJ,city,\n", [(7, "code")], "already appears on line 4"),
    (SMALL + "WZ,温州,ZJ,county,\n", [(7, "level")], "unknown level"),
    (SMALL + "WZ,温州,ZJ,7,\n", [(7, "level")], "unknown level"),
    (SMALL + ",温州,ZJ,city,\nWZ,,ZJ,city,\nWZ2,温州,ZJ,,\n", [(7, "code"), (8, "name"), (9, "level")], "required"),
    (SMALL + "X,X,X,city,\n", [(7, "parent_code")], "own parent"),
    (SMALL.replace("ZJ,浙江,HQ", "ZJ,浙江,HZ"), [(3, "level"), (3, "parent_code"), (4, "parent_code")], "cycle: "),
    (SMALL + "SZ,苏州,NB,city,\n", [(7, "level")], "deeper"),
    ("code,name,level\nHQ,HQ,0\n", [(1, "")], "missing columns: parent_code"),
    ("", [(1, "")], "empty"),
])
def test_malformed_files_report_each_bad_row_and_write_nothing(levels, text, expected, says):
    report = run(text)
    assert not report.ok and errors(report) == expected, report.errors
    assert says in " ".join(e.reason for e in report.errors)
    assert OrgUnit.objects.count() == 0 and OrgAuditEntry.objects.count() == 0


def test_gbk_bytes_are_reported_per_line(levels):
    data = SMALL.encode("gbk")
    report = run(data)
    assert errors(report) == [(line, "") for line in range(2, 7)]
    assert "not valid UTF-8" in report.errors[0].reason and "line 2" in str(report.errors[0])
    assert OrgUnit.objects.count() == 0


def test_a_bad_file_against_an_existing_tree_changes_nothing(levels):
    run(SMALL)
    before = snapshot()
    # A valid rename next to a cycle made with existing units: nothing at all is applied.
    report = run(SMALL.replace("HZ,杭州,", "HZ,Hangzhou,").replace("ZJ,浙江,HQ", "ZJ,浙江,NB"))
    assert errors(report) == [(3, "level"), (3, "parent_code"), (5, "parent_code")]
    assert snapshot() == before
    report = run(HEADER + "HZ,杭州,ZJ,province,\n")  # the import never changes a unit's level
    assert errors(report) == [(2, "level")] and snapshot() == before


def test_levels_are_only_created_when_asked(in_alpha):
    report = run(SMALL)
    assert errors(report) == [(1, "level")] and "--create-levels" in report.errors[0].reason
    assert OrgLevel.objects.count() == 0
    assert run(SMALL.replace(",hq,", ",0,").replace(",province,", ",1,").replace(",city,", ",2,"), create_levels=True).ok
    assert list(OrgLevel.objects.values_list("code", "rank")) == [("hq", 0), ("province", 1), ("city", 2)]


def test_a_provincial_admin_imports_inside_the_province_only(levels):
    run(SMALL)
    padmin = make_user("padmin")
    member(padmin, OrgUnit.objects.get(code="ZJ"), "provincial_admin")
    # Their province's own row names its (hidden) parent: unchanged, so fine.
    assert run(HEADER + "ZJ,浙江,HQ,province,\nWZ,温州,ZJ,city,\n", actor=padmin).created == ["WZ"]
    before = snapshot()
    report = run(HEADER + "WZ2,温州2,ZJ,city,\nSZ,苏州,JS,city,\nHZ,杭州,JS,city,\nNEW,New,,hq,\n", actor=padmin)
    assert errors(report) == [(3, "parent_code"), (4, "parent_code"), (5, "parent_code")]
    assert "unknown parent" in report.errors[0].reason  # JS exists, but the admin cannot see it
    assert "top of the tree" in report.errors[2].reason
    report = run(HEADER + "X1,X1,X2,city,\nX2,X2,X1,city,\n", actor=padmin)  # new rows in a cycle, no way up
    assert ("cycle: X1 -> X2 -> X1." in [e.reason for e in report.errors]) and not report.ok
    assert snapshot() == before


# --- The command -----------------------------------------------------------------------------

def org(*args):
    out = io.StringIO()
    call_command("org", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_imports_reports_and_fails_on_errors(alpha, db, tmp_path):
    good = tmp_path / "tree.csv"
    good.write_text(SMALL, encoding="utf-8")
    out = org("import", str(good), "--tenant", "alpha", "--create-levels", "--dry-run")
    assert "Dry run" in out and "5 units created" in out
    out = org("import", str(good), "--tenant", "alpha", "--create-levels")
    assert "5 rows: 5 units created" in out
    assert "0 units created, 0 moved, 0 renamed, 5 unchanged" in org("import", str(good), "--tenant", "alpha")
    assert "  ZJ\t浙江\t[province]" in org("tree", "--tenant", "alpha")

    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL + "XM,厦门,FJ,city,\n", encoding="utf-8")
    with pytest.raises(CommandError) as exc:
        org("import", str(bad), "--tenant", "alpha")
    assert "line 7, parent_code: unknown parent “FJ”" in str(exc.value) and "nothing was imported" in str(exc.value)
    with pytest.raises(CommandError, match="No such file"):
        org("import", str(tmp_path / "missing.csv"), "--tenant", "alpha")
    with pytest.raises(CommandError, match="No tenant"):
        org("import", str(good), "--tenant", "nope")


def test_the_demo_tenant_gets_the_shipped_tree_once(beta, db, tmp_path, capsys):
    assert load_demo_tree(beta.tenant, files=[tmp_path / "missing.csv"]) is None
    assert "no org tree file at" in capsys.readouterr().err
    report = load_demo_tree(beta.tenant)
    assert report.ok and len(report.created) == 374 and "374 units" in capsys.readouterr().out
    with schema_context(beta.schema_name):
        services.unit_rename(actor="pytest", unit=OrgUnit.objects.get(code="HQ"), name="Renamed by its admin")
        assert load_demo_tree(beta.tenant) is None  # a tree that exists is never re-imported over
        assert OrgUnit.objects.get(code="HQ").name == "Renamed by its admin" and OrgUnit.objects.count() == 374


def test_the_kam_command_line_runs_the_import(tenants, tmp_path):
    """`kam org import` as an operator types it: kam hands unknown commands to Django."""
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(SMALL, encoding="utf-8")
    bad.write_bytes(SMALL.encode("gbk"))
    kam = [str(Path(sys.executable).with_name("kam")), "org", "import"]
    env = child_env()  # the command speaks the default language (Chinese once translated): check numbers only
    ok = subprocess.run([*kam, str(good), "--tenant", "alpha", "--create-levels", "--dry-run"],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("5") >= 2  # 5 rows, 5 units to create
    failed = subprocess.run([*kam, str(bad), "--tenant", "alpha"], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0 and "0xD7" in failed.stderr  # the first GBK byte of 总部, on line 2
