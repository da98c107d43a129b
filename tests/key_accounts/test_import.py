"""Customer import (R7) through the services, in-process: the IBM sample with the shipped
mapping, idempotent re-imports, history with the actor, malformed files that write nothing,
scope, and the set-based checks against the archive.

Files here are small, so their check and commit run in the caller (key_accounts.importing
.services.inline_limit); the Celery path and a killed worker are in test_import_worker.py.
"""
import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from key_accounts.history import event_model
from key_accounts.importing import run as import_run
from key_accounts.importing import services
from key_accounts.models import ColumnMapping, Customer, GradingRule, ImportJob, PhoneNumber
from key_accounts.validators import credit_code_check_char
from tests.key_accounts.conftest import new_customer

IBM = Path("/work/shared/data/telco_customer_churn_ibm.csv")
if not IBM.exists():  # the repository's sibling folder, wherever it is checked out
    IBM = Path(__file__).resolve().parents[3] / "shared" / "data" / "telco_customer_churn_ibm.csv"
IBM_MAPPING = "IBM Telco Customer Churn"
SPEC = {
    "key": "external_id",
    "columns": {
        "编号": {"field": "external_id"},
        "名称": {"field": "name"},
        "信用代码": {"field": "credit_code"},
        "类型": {"field": "kind", "values": {"企业": "enterprise", "政府": "government"}},
        "单位": {"field": "org_unit"},
        "电话": {"field": "phone"},
    },
}
HEADER = ["编号", "名称", "信用代码", "类型", "单位", "电话"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def english():
    """Jobs keep their creator's language for their errors: these tests read them in English."""
    with translation.override("en"):
        yield


def credit_code(n, division="440100"):
    first17 = f"91{division}{n:09d}"[:17]
    return first17 + credit_code_check_char(first17)


def csv_file(rows, header=HEADER, name="customers.csv", encoding="utf-8"):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")


def ibm_file():
    return SimpleUploadedFile("telco_customer_churn_ibm.csv", IBM.read_bytes(), content_type="text/csv")


def ibm_rows():
    with open(IBM, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def errors_of(job):
    return [(e.line, e.column, e.reason) for e in job.row_errors.order_by("line", "id")]


def events(**filters):
    return event_model(Customer).objects.filter(**filters)


def check(actor, upload, spec=SPEC, unit=None, mapping=None):
    job = services.job_create(actor=actor, upload=upload, spec=None if mapping else spec, mapping=mapping, unit=unit)
    job.refresh_from_db()
    return job


def commit(actor, job):
    services.job_commit(actor=actor, job=job)
    job.refresh_from_db()
    return job


# --- The IBM sample with the shipped mapping ----------------------------------------------------

def test_the_shipped_mapping_is_in_every_tenant_and_passes_its_own_check(in_alpha):
    from key_accounts.importing.spec import check_spec, needs_unit

    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    shipped = json.loads((Path(services.__file__).parents[1] / "data" / "mapping_ibm_telco_churn.json").read_text())
    assert mapping.spec == shipped["spec"] and mapping.created_by is None
    assert needs_unit(check_spec(mapping.spec))  # the wizard's unit decides where customers go


def test_the_ibm_sample_imports_cleanly_with_the_shipped_mapping(tree, people):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    job = check(people.city, ibm_file(), mapping=mapping, unit=tree.c11)
    assert (job.status, job.error_count, job.total_rows, job.created_count) == ("checked", 0, 7043, 7043)
    assert job.spec["fixed"]["org_unit"] == "C11" and job.encoding == "utf-8"
    assert not Customer.objects.filter(external_id="7590-VHVEG").exists()  # the dry run wrote nothing

    job = commit(people.city, job)
    assert (job.status, job.created_count, job.updated_count, job.error_count) == ("done", 7043, 0, 0)
    imported = Customer.objects.filter(org_unit=tree.c11, external_id__isnull=False)
    assert imported.count() == 7043
    rows = ibm_rows()
    churned = {r["customerID"] for r in rows if r["Churn"] == "Yes"}
    assert set(imported.filter(status="churned").values_list("external_id", flat=True)) == churned
    assert imported.filter(status="active").count() == 7043 - len(churned)
    first = imported.get(external_id="7590-VHVEG")
    assert (first.name, first.kind, first.credit_code, first.grade) == ("IBM Telco 7590-VHVEG", "individual", None, "C")
    # The 11 blank TotalCharges are the customers with tenure 0: read as 0, and imported.
    blank = [r["customerID"] for r in rows if not r["TotalCharges"].strip()]
    assert len(blank) == 11 and {r["tenure"] for r in rows if not r["TotalCharges"].strip()} == {"0"}
    assert imported.filter(external_id__in=blank).count() == 11


def test_ibm_grades_follow_the_tenants_grading_rules_from_charges_and_services(tree, people):
    GradingRule.objects.create(grade="A", min_monthly_revenue=100, min_products=7)
    GradingRule.objects.create(grade="B", min_monthly_revenue=70, min_products=3)
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    commit(people.city, check(people.city, ibm_file(), mapping=mapping, unit=tree.c11))

    services_columns = mapping.spec["grading"]["products"]
    no_product = set(mapping.spec["grading"]["no_product"])
    expected = {}
    for row in ibm_rows():
        revenue = Decimal(row["MonthlyCharges"])
        taken = sum(1 for c in services_columns if row[c] not in no_product)
        expected[row["customerID"]] = "A" if revenue >= 100 and taken >= 7 else "B" if revenue >= 70 and taken >= 3 else "C"
    got = dict(Customer.objects.filter(external_id__in=expected).values_list("external_id", "grade"))
    assert got == expected
    assert {"A", "B", "C"} <= set(got.values())


def test_a_blank_total_charges_is_only_accepted_where_tenure_is_zero(tree, people):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    rows = ibm_rows()[:3]
    rows[0]["TotalCharges"] = " "  # tenure 1: an error
    rows[1]["TotalCharges"], rows[1]["tenure"] = " ", "0"  # a new customer: 0
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    job = check(people.city, SimpleUploadedFile("ibm.csv", buffer.getvalue().encode()), mapping=mapping, unit=tree.c11)
    assert job.status == "invalid"
    assert errors_of(job) == [(2, "TotalCharges", "This cell is blank; blank is only allowed when tenure = 0.")]


def test_reimporting_the_same_file_changes_nothing_and_adds_no_history(tree, people):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    commit(people.city, check(people.city, ibm_file(), mapping=mapping, unit=tree.c11))
    history_before = events().count()
    updated_at = dict(Customer.objects.values_list("pk", "updated_at"))

    again = check(people.city, ibm_file(), mapping=mapping, unit=tree.c11)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 7043)
    again = commit(people.city, again)
    assert (again.status, again.created_count, again.updated_count, again.unchanged_count) == ("done", 0, 0, 7043)
    assert events().count() == history_before
    assert dict(Customer.objects.values_list("pk", "updated_at")) == updated_at


def test_every_imported_row_has_history_with_the_actor_the_unit_and_the_job(tree, people):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    job = commit(people.city, check(people.city, ibm_file(), mapping=mapping, unit=tree.c11))
    imported = set(Customer.objects.filter(external_id__isnull=False).values_list("pk", flat=True))
    inserts = events(pgh_label="insert", pgh_obj_id__in=imported).select_related("pgh_context")
    assert {e.pgh_obj_id for e in inserts} == imported and inserts.count() == 7043
    contexts = {json.dumps(e.pgh_context.metadata, sort_keys=True) for e in inserts}
    assert len(contexts) == 1
    context = json.loads(contexts.pop())
    assert context == {"actor_id": people.city.pk, "actor": people.city.get_username(), "unit_id": tree.c11.pk,
                       "unit": "C11", "via": "import", "import_job": job.pk}


# --- Updates, adoption, phones ------------------------------------------------------------------

def test_a_reimport_updates_only_what_changed_with_history_and_keeps_unmapped_fields(tree, people, archive):
    services_customer = archive.c11
    Customer.objects.filter(pk=services_customer.pk).update(external_id="E-1", address="天河路 1 号")
    rows = [["E-1", "广州市天河科技有限公司（新）", "", "企业", "C11", "020-8888 6666"], ["E-2", "新客户", "", "企业", "C11", ""]]
    job = check(people.province, csv_file(rows))
    assert (job.created_count, job.updated_count, job.unchanged_count) == (1, 1, 0)
    job = commit(people.province, job)
    customer = Customer.objects.get(pk=services_customer.pk)
    assert customer.name == "广州市天河科技有限公司（新）" and customer.address == "天河路 1 号"
    update = events(pgh_obj_id=customer.pk, pgh_label="update").select_related("pgh_context").latest("pgh_id")
    assert update.pgh_context.metadata["actor_id"] == people.province.pk
    assert update.pgh_context.metadata["via"] == "import"
    assert update.pgh_context.metadata["unit"] == "P1"  # units per row: the importer's own unit
    assert (update.name, update.address) == ("广州市天河科技有限公司（新）", "天河路 1 号")


def test_a_row_keyed_by_external_id_adopts_the_customer_with_its_credit_code(tree, people, archive):
    group = archive.group  # credit code 91110000100017643K, no external id, owned by P2
    rows = [["G-1", group.name, group.credit_code, "企业", "P2", ""]]
    job = commit(people.admin, check(people.admin, csv_file(rows)))
    assert (job.status, job.created_count, job.updated_count) == ("done", 0, 1)
    group.refresh_from_db()
    assert group.external_id == "G-1"


def test_imported_phones_are_indexed_and_a_changed_phone_is_reindexed(tree, people):
    commit(people.city, check(people.city, csv_file([["P-1", "甲公司", "", "企业", "C11", "+86 138-0013-8000"]])))
    customer = Customer.objects.get(external_id="P-1")
    assert list(PhoneNumber.objects.filter(customer=customer).values_list("digits", flat=True)) == ["13800138000"]
    commit(people.city, check(people.city, csv_file([["P-1", "甲公司", "", "企业", "C11", "010 8888 6666, 13900001111"]])))
    assert sorted(PhoneNumber.objects.filter(customer=customer).values_list("digits", "reversed_digits")) == [
        ("01088886666", "66668888010"), ("13900001111", "11110000931")]


def test_an_xlsx_file_imports_like_a_csv(tree, people):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["X-1", "表格公司", credit_code(1), "企业", "C11", 13800138000])
    sheet.append(["X-2", "表格二公司", None, "政府", "C12", None])
    buffer = io.BytesIO()
    book.save(buffer)
    upload = SimpleUploadedFile("customers.xlsx", buffer.getvalue())
    job = commit(people.province, check(people.province, upload))
    assert (job.status, job.created_count, job.encoding) == ("done", 2, "xlsx")
    assert Customer.objects.get(external_id="X-1").phone == "13800138000"
    assert Customer.objects.get(external_id="X-2").kind == "government"


# --- Malformed files: every invalid row reported, nothing written -------------------------------

def assert_nothing_written(before):
    assert Customer.objects.count() == before
    assert not events(pgh_context__metadata__via="import").exists()


def test_a_file_in_another_encoding_than_declared_names_the_line(tree, people):
    before = Customer.objects.count()
    text = "编号,名称,信用代码,类型,单位,电话\nA-1,甲公司,,企业,C11,\nA-2,乙公司,,企业,C11,\n"
    upload = SimpleUploadedFile("gbk.csv", text.encode("gb18030"))
    job = check(people.city, upload, spec={**SPEC, "encoding": "utf-8"})
    assert job.status == "invalid"
    [(line, column, reason)] = errors_of(job)
    assert line == 1 and "Line 1 is not valid UTF-8" in reason
    assert_nothing_written(before)


def test_gb18030_is_detected_and_undecodable_bytes_name_their_line(tree, people):
    text = "编号,名称,信用代码,类型,单位,电话\nA-1,甲公司,,企业,C11,\n"
    job = check(people.city, SimpleUploadedFile("gbk.csv", text.encode("gb18030")))
    assert (job.status, job.encoding, job.created_count) == ("checked", "gb18030", 1)

    raw = text.encode("utf-8") + b"A-2,\xff\xfe,," + "企业,C11,\n".encode("utf-8")
    job = check(people.city, SimpleUploadedFile("broken.csv", raw))
    [(line, column, reason)] = errors_of(job)
    assert job.status == "invalid" and line == 3 and "Line 3" in reason


def test_missing_required_columns_are_one_file_level_error(tree, people):
    before = Customer.objects.count()
    job = check(people.city, csv_file([["A-1", "甲公司", "C11"]], header=["编号", "名称", "单位"]))
    assert job.status == "invalid"
    [(line, column, reason)] = errors_of(job)
    assert (line, column) == (1, "信用代码, 电话, 类型")
    assert "信用代码" in reason and "编号, 名称, 单位" in reason
    assert_nothing_written(before)


def test_bad_credit_codes_duplicates_unknown_units_and_bad_choices_are_each_reported(tree, people):
    before = Customer.objects.count()
    good = credit_code(7)
    rows = [
        ["B-1", "好公司", good, "企业", "C11", ""],  # line 2
        ["B-2", "坏代码公司", good[:-1] + ("0" if good[-1] != "0" else "1"), "企业", "C11", ""],  # 3: check character
        ["B-3", "短代码公司", "123", "企业", "C11", ""],  # 4: length
        ["B-1", "重复编号公司", "", "企业", "C11", ""],  # 5: same external id as line 2
        ["B-5", "重复代码公司", good, "企业", "C11", ""],  # 6: same credit code as line 2
        ["B-6", "无单位公司", "", "企业", "NOPE", ""],  # 7: unknown unit
        ["B-7", "", "", "外星", "C11", ""],  # 8: no name, bad kind
    ]
    job = check(people.province, csv_file(rows))
    assert job.status == "invalid" and job.total_rows == 7
    found = errors_of(job)
    assert [(line, column) for line, column, _reason in found] == [
        (3, "信用代码"), (4, "信用代码"), (5, "编号"), (6, "信用代码"), (7, "单位"), (8, "名称"), (8, "类型")]
    reasons = dict(((line, column), reason) for line, column, reason in found)
    assert "check character" in reasons[(3, "信用代码")]
    assert "18 characters" in reasons[(4, "信用代码")]
    assert reasons[(5, "编号")] == "The same external id as line 2."
    assert reasons[(6, "信用代码")] == "The same unified social credit code as line 2."
    assert reasons[(7, "单位")] == "No unit has this code."
    assert reasons[(8, "名称")] == "This cell is required."
    assert "Not one of the choices" in reasons[(8, "类型")]
    assert job.error_count == 7
    with pytest.raises(ValidationError):
        services.job_commit(actor=people.province, job=job)
    assert_nothing_written(before)


def test_repeats_are_caught_across_chunks(tree, people, monkeypatch):
    monkeypatch.setattr(import_run, "CHUNK", 2)
    rows = [[f"R-{n}", f"公司{n}", "", "企业", "C11", ""] for n in range(5)] + [["R-1", "又一个", "", "企业", "C11", ""]]
    job = check(people.city, csv_file(rows))
    assert errors_of(job) == [(7, "编号", "The same external id as line 3.")]


@pytest.mark.parametrize("chunk", [2, 20_000])
def test_a_commit_of_a_file_with_repeats_reports_them_and_writes_nothing(tree, people, monkeypatch, chunk):
    """The commit checks again (the file may have changed since its dry run): repeats inside a
    chunk or across chunks stop the writing before a unique constraint could, and the report
    names the first line, not a conflict with the row this very import wrote."""
    monkeypatch.setattr(import_run, "CHUNK", chunk)
    rows = [["D-1", "甲", credit_code(1), "企业", "C11", ""], ["D-2", "乙", "", "企业", "C11", ""],
            ["D-3", "丙", credit_code(1), "企业", "C11", ""], ["D-1", "丁", "", "企业", "C11", ""]]
    upload = csv_file(rows)
    path = Path(settings_media()) / "repeats.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(upload.read())
    before = Customer.objects.count()
    outcome = import_run.run_import(actor=people.city, path=path, name="repeats.csv", raw_spec=SPEC, commit=True,
                                    errors=(log := import_run.ErrorLog()))
    assert not outcome.committed and outcome.errors == 2
    log.file.seek(0)
    assert sorted(line.split("\t")[:3] for line in log.file.read().splitlines()) == [
        ["4", "信用代码", "The same unified social credit code as line 2."], ["5", "编号", "The same external id as line 2."]]
    assert_nothing_written(before)


def settings_media():
    from django.conf import settings

    return settings.MEDIA_ROOT


def test_a_commit_that_finds_an_invalid_row_writes_nothing_even_after_written_chunks(tree, people, monkeypatch):
    monkeypatch.setattr(import_run, "CHUNK", 2)
    rows = [[f"W-{n}", f"公司{n}", "", "企业", "C11", ""] for n in range(6)]
    job = check(people.city, csv_file(rows))
    assert job.status == "checked"
    # Meanwhile someone takes the credit code the last row will carry... by giving it to a new customer.
    new_customer(people.admin, tree.c11, "抢先公司", external_id="W-5-other", credit_code=credit_code(9))
    job.file.open("rb")
    content = job.file.read().decode().replace("W-5,公司5,,", f"W-5,公司5,{credit_code(9)},")
    job.file.close()
    Path(job.file.path).write_text(content, encoding="utf-8")
    before = Customer.objects.count()
    job = commit(people.city, job)
    assert job.status == "invalid"
    assert errors_of(job) == [(7, "信用代码", "This unified social credit code already belongs to another customer.")]
    assert_nothing_written(before)


def test_an_individual_cannot_carry_a_credit_code(tree, people):
    job = check(people.city, csv_file([["I-1", "张三", credit_code(3), "individual", "C11", ""]]))
    assert errors_of(job) == [(2, "信用代码", "Individuals have no unified social credit code.")]


# --- Scope: the importer's subtree ---------------------------------------------------------------

def test_rows_for_units_outside_the_importers_subtree_are_rejected(tree, people):
    before = Customer.objects.count()
    rows = [["S-1", "广州公司", "", "企业", "C11", ""], ["S-2", "长沙公司", "", "企业", "C21", ""],
            ["S-3", "湖南省公司", "", "企业", "P2", ""]]
    job = check(people.province, csv_file(rows))  # provincial manager of P1
    assert errors_of(job) == [(3, "单位", "You may not add customers to this unit."),
                              (4, "单位", "You may not add customers to this unit.")]
    assert_nothing_written(before)


def test_rows_updating_customers_outside_the_scope_are_rejected(tree, people, archive):
    Customer.objects.filter(pk=archive.c21.pk).update(external_id="OUT-1")
    job = check(people.province, csv_file([["OUT-1", "改名", "", "企业", "C11", ""]]))
    assert errors_of(job) == [
        (2, "编号", "This customer exists in a unit where you may not change customers."),
        (2, "单位", "Moving this customer to another unit needs the assign permission at both units."),
    ]
    assert Customer.objects.get(pk=archive.c21.pk).name == "长沙市岳麓教育局"


def test_moving_a_customer_to_another_unit_needs_the_assign_permission(tree, people, archive):
    Customer.objects.filter(pk=archive.c11.pk).update(external_id="MOVE-1")
    rows = [["MOVE-1", archive.c11.name, "", "企业", "C12", ""]]
    job = check(people.city, csv_file(rows))  # account manager at C11: no "customer.assign", no C12
    assert [(line, column) for line, column, _reason in errors_of(job)] == [(2, "单位")]
    job = commit(people.province, check(people.province, csv_file(rows)))  # P1's manager may assign within P1
    assert job.status == "done"
    assert Customer.objects.get(pk=archive.c11.pk).org_unit == tree.c12


def test_the_fixed_unit_must_be_one_the_importer_may_add_to(tree, people):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    with pytest.raises(ValidationError) as refused:
        services.job_create(actor=people.city, upload=ibm_file(), mapping=mapping, unit=tree.c21)
    assert "unit" in refused.value.message_dict
    with pytest.raises(ValidationError) as missing:
        services.job_create(actor=people.city, upload=ibm_file(), mapping=mapping)
    assert "unit" in missing.value.message_dict


def test_someone_without_the_add_permission_cannot_import(tree, people):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.job_create(actor=people.hq, upload=csv_file([]), spec=SPEC)
    assert not ImportJob.objects.exists()


def test_utf16_files_from_excel_are_read_tab_separated(tree, people):
    text = "编号\t名称\t信用代码\t类型\t单位\t电话\r\nU-1\t统一码公司\t\t企业\tC11\t\r\n"
    job = check(people.city, SimpleUploadedFile("unicode.txt", text.encode("utf-16")))
    assert (job.status, job.encoding, job.created_count) == ("checked", "utf-16", 1)
