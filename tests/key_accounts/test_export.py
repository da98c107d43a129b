"""Customer export (R8): the filtered list as CSV or XLSX, scope-filtered, streamed; larger
exports become jobs whose files only their creator (or a tenant admin) downloads.

Jobs here are run in-process with exporting.job_run (their Celery message is never sent: the
``db`` fixture's transaction never commits); test_export_worker.py runs them in a real worker.
"""
import csv
import io
import os

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from django_tenants.utils import schema_context

from key_accounts import exporting, selectors, services
from key_accounts.models import CustomerUserObjectPermission, ExportJob
from permissions.models import Membership, Role
from permissions.scope import invalidate_scopes
from tests.key_accounts.conftest import new_customer
from tests.support.people import client_for, make_user, member

API = "/api/v1/exports"
PAGE = "/customers/exports/"
ENGLISH_HEADER = [
    "ID", "External id", "Name", "Type", "Unified social credit code", "Industry", "Size", "Grade", "Status",
    "Owning unit code", "Owning unit", "Account manager", "National key account", "Potential key account", "Group",
    "Main phone", "Address", "Created at", "Updated at",
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def content_of(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response):
    body = content_of(response)
    assert body.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would read the Chinese as mojibake"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def xlsx_rows(response):
    workbook = openpyxl.load_workbook(io.BytesIO(content_of(response)), read_only=True)
    return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


def rows_of(response, fmt):
    assert response.status_code == 200, response.content[:500] if not response.streaming else response
    return csv_rows(response) if fmt == "csv" else xlsx_rows(response)


def ids_in(rows):
    return sorted(int(row[0]) for row in rows[1:])


def allowed_ids(user):
    return sorted(selectors.customers(user=user, action="export").values_list("pk", flat=True))


@pytest.fixture
def exporters(tree, people, archive):
    """Exporters at every level: HQ analyst, P1 and P2 managers, a C11 manager who may export,
    an account manager who may export one single customer (elsewhere) through a direct grant,
    and the tenant admin."""
    p2, c11, granted = make_user("p2"), make_user("c11x"), make_user("granted")
    member(p2, tree.p2, "provincial_manager")
    member(c11, tree.c11, "provincial_manager")  # the role holds customer.export, at a city here
    member(granted, tree.c21, "account_manager")  # views C21's customers, exports none of them
    grant_export(granted, archive.c12)
    return {"hq": people.hq, "p1": people.province, "p2": p2, "c11": c11, "granted": granted, "admin": people.admin}


def grant_export(user, customer):
    permission = Permission.objects.get(codename="export_customer", content_type__app_label="key_accounts")
    CustomerUserObjectPermission.objects.create(user=user, permission=permission, content_object=customer)
    invalidate_scopes()


# --- Scope ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_level_exports_exactly_the_customers_its_scope_allows(in_alpha, tree, archive, exporters, fmt):
    expected = {
        "hq": archive.all(),
        "p1": [archive.c11, archive.c12, archive.member11],
        # P2 owns the group: its members anywhere come along (group rule).
        "p2": [archive.c21, archive.group, archive.member21, archive.member11],
        "c11": [archive.c11, archive.member11],
        "granted": [archive.c12],
        "admin": archive.all(),
    }
    for name, user in exporters.items():
        rows = rows_of(client_for(in_alpha, user).get(f"{API}/customers.{fmt}"), fmt)
        assert rows[0] == ENGLISH_HEADER
        assert ids_in(rows) == sorted(c.pk for c in expected[name]) == allowed_ids(user), name


def test_the_same_goes_for_the_export_page(in_alpha, archive, exporters):
    for name, user in exporters.items():
        for fmt in ("csv", "xlsx"):
            rows = rows_of(client_for(in_alpha, user).get(PAGE, {"format": fmt}), fmt)
            assert ids_in(rows) == allowed_ids(user), (name, fmt)


def test_without_customer_export_the_answer_is_403(in_alpha, archive, people):
    client = client_for(in_alpha, people.city)  # an account manager: view, add, change; no export
    for fmt in ("csv", "xlsx"):
        response = client.get(f"{API}/customers.{fmt}")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    page = client.get(PAGE, {"format": "csv"})
    assert page.status_code == 403 and b'data-testid="forbidden"' in page.content
    assert client.get(PAGE).status_code == 403


def test_anonymous_callers_are_sent_to_log_in(in_alpha, archive):
    assert in_alpha.client().get(f"{API}/customers.csv").status_code == 401
    response = in_alpha.client().get(PAGE, {"format": "csv"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_another_tenants_user_gets_nothing(in_alpha, beta, archive, exporters, settings):
    settings.KAM_EXPORT_SYNC_LIMIT = 1
    response = client_for(in_alpha, exporters["hq"]).get(f"{API}/customers.csv")
    job = ExportJob.objects.get(pk=response.json()["id"])
    exporting.job_run(job.pk)
    assert ExportJob.objects.get(pk=job.pk).file.name.startswith(f"{in_alpha.schema_name}/exports/")

    # Beta's admin, logged in on beta: their session means nothing on alpha's host ...
    for url in (f"{API}/customers.csv", f"{API}/{job.pk}/", f"{API}/{job.pk}/download/"):
        assert beta.admin_client().get(url, HTTP_HOST=in_alpha.host).status_code == 401
    response = beta.admin_client().get(f"{PAGE}{job.pk}/download/", HTTP_HOST=in_alpha.host)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    # ... and on beta's own host alpha's job does not exist.
    with schema_context(beta.schema_name):
        stranger = beta.admin_client()
        assert stranger.get(f"{API}/{job.pk}/").status_code == 404
        assert stranger.get(f"{API}/{job.pk}/download/").status_code == 404
        assert stranger.get(f"{PAGE}{job.pk}/download/").status_code == 404


# --- Formats ----------------------------------------------------------------------------------

def test_csv_is_utf8_with_bom_and_labels_in_the_users_language(in_alpha, archive, people):
    people.admin.first_name, people.admin.last_name = "Ada", "Admin"
    people.admin.save()
    services.customer_update(actor=people.admin, customer=archive.c11, data={
        "account_manager": people.admin, "is_potential_key_account": True, "address": "天河路 1 号",
    })
    response = client_for(in_alpha, people.hq).get(f"{API}/customers.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="customers-')
    rows = {int(row[0]): row for row in csv_rows(response)[1:]}
    c11 = dict(zip(ENGLISH_HEADER, rows[archive.c11.pk]))
    assert c11["Name"] == "广州市天河科技有限公司"
    assert c11["Address"] == "天河路 1 号"
    assert (c11["Type"], c11["Status"], c11["Grade"]) == ("Enterprise", "Active", "Grade C")
    assert (c11["Owning unit code"], c11["Owning unit"]) == ("C11", "C11")
    assert c11["Account manager"] == "Ada Admin"
    assert (c11["National key account"], c11["Potential key account"]) == ("No", "Yes")
    assert c11["Main phone"] == "020-8888 6666"
    assert len(c11["Created at"]) == 19  # local time, to the second
    member = dict(zip(ENGLISH_HEADER, rows[archive.member21.pk]))
    assert member["Group"] == "中国联合集团"
    group = dict(zip(ENGLISH_HEADER, rows[archive.group.pk]))
    assert (group["Unified social credit code"], group["National key account"]) == ("91110000100017643K", "Yes")
    assert rows[archive.c21.pk][3] == "Government"


def test_headers_follow_the_language_of_the_request(in_alpha, archive, people):
    client = client_for(in_alpha, people.hq)
    english = csv_rows(client.get(f"{API}/customers.csv"))[0]
    chinese = csv_rows(client.get(f"{API}/customers.csv", HTTP_ACCEPT_LANGUAGE="zh-hans"))[0]
    assert english == ENGLISH_HEADER
    with translation.override("zh-hans"):
        assert chinese == [str(title) for title in exporting.headers()]
    assert chinese[2] == "名称"  # the model's own verbose name, translated


def test_xlsx_parses_back_with_openpyxl(in_alpha, archive, people):
    response = client_for(in_alpha, people.hq).get(f"{API}/customers.xlsx")
    assert response["Content-Type"] == exporting.CONTENT_TYPES["xlsx"]
    rows = xlsx_rows(response)
    assert rows[0] == ENGLISH_HEADER
    by_id = {row[0]: dict(zip(ENGLISH_HEADER, row)) for row in rows[1:]}
    assert set(by_id) == {c.pk for c in archive.all()}
    assert by_id[archive.c12.pk]["Name"] == "深圳市南山物流有限公司"
    assert by_id[archive.c12.pk]["Main phone"] == "13800138000"  # text, not a number
    assert by_id[archive.c12.pk]["Created at"].year >= 2024  # a real date cell


def test_cells_that_look_like_formulas_stay_text(in_alpha, tree, people, archive):
    evil = new_customer(people.admin, tree.c11, '=HYPERLINK("http://x","y")', phone="+86 138 0013 8000")
    client = client_for(in_alpha, people.hq)
    csv_row = next(row for row in csv_rows(client.get(f"{API}/customers.csv")) if row[0] == str(evil.pk))
    assert csv_row[2] == "'" + evil.name
    assert csv_row[15] == "'+86 138 0013 8000"
    workbook = openpyxl.load_workbook(io.BytesIO(content_of(client.get(f"{API}/customers.xlsx"))))
    [cell] = [row[2] for row in workbook.worksheets[0].iter_rows(min_row=2) if row[0].value == evil.pk]
    assert (cell.value, cell.data_type) == (evil.name, "s")


# --- Filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_list_filters_are_respected(in_alpha, tree, archive, people, fmt):
    client = client_for(in_alpha, people.hq)

    def exported(**params):
        return ids_in(rows_of(client.get(f"{API}/customers.{fmt}", params), fmt))

    assert exported(status="active") == [archive.c11.pk]
    assert exported(kind="government") == [archive.c21.pk]
    assert exported(unit=tree.p2.pk) == sorted([archive.c21.pk, archive.group.pk, archive.member21.pk])
    assert exported(q="集团") == sorted([archive.group.pk, archive.member11.pk, archive.member21.pk])
    assert exported(group=archive.group.pk) == sorted([archive.member11.pk, archive.member21.pk])
    assert exported(national="true") == [archive.group.pk]
    assert exported(phone="138 0013 8000") == [archive.c12.pk]
    assert exported(name="南山", unit=tree.p2.pk) == []
    # Ordering follows the list too: by name, ascending.
    rows = rows_of(client.get(f"{API}/customers.{fmt}", {"ordering": "name"}), fmt)
    names = [row[2] for row in rows[1:]]
    assert names == sorted(names)


def test_filters_narrow_the_scope_never_widen_it(in_alpha, tree, archive, people):
    client = client_for(in_alpha, people.province)  # P1
    assert ids_in(csv_rows(client.get(f"{API}/customers.csv", {"unit": tree.p2.pk}))) == []
    rows = csv_rows(client.get(f"{API}/customers.csv", {"group": archive.group.pk}))
    assert ids_in(rows) == [archive.member11.pk]  # not member21, served by C21


def test_a_bad_filter_or_format_is_a_400(in_alpha, archive, people):
    client = client_for(in_alpha, people.hq)
    response = client.get(f"{API}/customers.csv", {"status": "nonsense"})
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]
    assert client.get(PAGE, {"format": "pdf"}).status_code == 400
    assert client.get(PAGE, {"format": "csv", "grade": "Z"}).status_code == 400


# --- Streaming and queries ---------------------------------------------------------------------

def test_a_small_export_streams_and_its_queries_do_not_grow_with_rows(in_alpha, tree, archive, people, monkeypatch):
    monkeypatch.setattr(exporting, "CHUNK", 4)  # several server-side fetches even for a few rows
    client = client_for(in_alpha, people.province)

    def run():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"{API}/customers.csv")
            assert response.streaming
            rows = csv_rows(response)
        return len(queries), len(rows) - 1

    # The fixtures changed memberships inside this test's open transaction, which keeps scopes
    # out of the cache until a commit that never comes; production reads them from the cache.
    monkeypatch.setattr(connection, "_kam_scope_pending", set(), raising=False)
    run()  # the user's scope is cached from here on
    few_queries, few_rows = run()
    for i in range(30):
        new_customer(people.admin, tree.c12 if i % 2 else tree.c11, f"新客户 {i}", account_manager=people.province)
    many_queries, many_rows = run()
    assert many_rows == few_rows + 30
    # Tenant and session (4), user, the scope's grants and groups, the bounded count, the cursor.
    assert many_queries == few_queries <= 9


def test_rows_are_read_through_a_server_side_cursor(in_alpha, archive, people):
    with CaptureQueriesContext(connection) as queries:
        client_for(in_alpha, people.hq).get(f"{API}/customers.csv").getvalue()
    cursors = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DECLARE")]
    assert len(cursors) == 1 and '"key_accounts_customer"' in cursors[0]


# --- Background jobs ---------------------------------------------------------------------------

@pytest.fixture
def big(settings):
    settings.KAM_EXPORT_SYNC_LIMIT = 3  # the archive (6 customers) is "large" for HQ


def test_a_large_export_becomes_a_job_and_ends_in_a_download(in_alpha, archive, people, big):
    client = client_for(in_alpha, people.province)
    response = client.get(f"{API}/customers.xlsx", {"status": "prospect"})
    assert response.status_code == 200  # P1 has 2 prospects: still small

    response = client.get(f"{API}/customers.xlsx")  # P1: 3 customers, the limit
    assert response.status_code == 200
    hq = client_for(in_alpha, people.hq)
    response = hq.get(f"{API}/customers.xlsx", {"q": "", "ordering": "name", "page": "2"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["format"] == "xlsx" and body["download_url"] is None
    assert body["filters"] == {"ordering": ["name"]}
    assert response["Location"] == body["url"] == f"http://{in_alpha.host}{API}/{body['id']}/"

    job = exporting.job_run(body["id"])
    assert (job.status, job.row_count, job.language) == ("done", 6, "en")
    body = hq.get(f"{API}/{job.pk}/").json()
    assert body["status"] == "done" and body["row_count"] == 6
    download = hq.get(body["download_url"])
    assert download["Content-Disposition"].startswith('attachment; filename="customers-')
    rows = xlsx_rows(download)
    assert [row[2] for row in rows[1:]] == sorted(c.name for c in archive.all())
    assert exporting.job_run(job.pk).file.name == job.file.name  # twice: nothing changes
    assert [j["id"] for j in hq.get(f"{API}/").json()["results"]] == [job.pk]


def test_the_page_redirects_a_large_export_to_its_job_page(in_alpha, archive, people, big):
    client = client_for(in_alpha, people.hq)
    response = client.get(PAGE, {"format": "csv", "national": "false"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{PAGE}{job.pk}/"
    assert job.filters == {"national": ["false"]}

    page = client.get(f"{PAGE}{job.pk}/")
    assert b'data-status="pending"' in page.content and b'hx-trigger="every 2s"' in page.content
    assert b"export-download" not in page.content

    exporting.job_run(job.pk)
    partial = client.get(f"{PAGE}{job.pk}/", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'data-status="done"' in partial.content
    assert b"hx-trigger" not in partial.content  # polling stops
    assert f'href="{PAGE}{job.pk}/download/"'.encode() in partial.content
    rows = csv_rows(client.get(f"{PAGE}{job.pk}/download/"))
    assert ids_in(rows) == sorted(c.pk for c in archive.all() if not c.is_national_key_account)
    listing = client.get(PAGE)
    assert f'data-job="{job.pk}"'.encode() in listing.content


@pytest.fixture
def finished_job(in_alpha, archive, people, big):
    response = client_for(in_alpha, people.hq).get(f"{API}/customers.csv")
    return exporting.job_run(response.json()["id"])


def test_only_the_creator_and_tenant_admins_download_a_jobs_file(in_alpha, people, exporters, finished_job):
    pk = finished_job.pk
    for user in (people.hq, people.admin):
        client = client_for(in_alpha, user)
        assert client.get(f"{API}/{pk}/").status_code == 200
        assert client.get(f"{API}/{pk}/download/").status_code == 200
        assert client.get(f"{PAGE}{pk}/download/").status_code == 200
    other = client_for(in_alpha, exporters["p1"])  # may export, but it is not their job
    for url in (f"{API}/{pk}/", f"{API}/{pk}/download/", f"{PAGE}{pk}/", f"{PAGE}{pk}/download/"):
        assert other.get(url).status_code == 404, url
    assert other.get(f"{API}/{pk + 1000}/").status_code == 404  # same answer as a missing id
    assert other.get(f"{API}/").json()["results"] == []


def test_a_creator_who_lost_the_export_permission_cannot_download(in_alpha, tree, people, finished_job):
    client = client_for(in_alpha, people.hq)
    # Still an analyst at HQ, but with a role that does not export.
    Membership.objects.filter(user=people.hq).update(role=Role.objects.get(code="account_manager"))
    invalidate_scopes()
    for url in (f"{API}/{finished_job.pk}/download/", f"{PAGE}{finished_job.pk}/download/", f"{API}/{finished_job.pk}/"):
        assert client.get(url).status_code == 403, url
    # No membership at all: the customers module is gone for them, as if it did not exist.
    Membership.objects.filter(user=people.hq).delete()
    invalidate_scopes()
    assert client.get(f"{API}/{finished_job.pk}/download/").status_code == 404
    assert client.get(f"{PAGE}{finished_job.pk}/download/").status_code == 404


def test_a_creator_whose_scope_narrowed_cannot_download_the_wider_file(in_alpha, tree, people, finished_job):
    client = client_for(in_alpha, people.hq)
    Membership.objects.filter(user=people.hq).update(unit=tree.p1)
    invalidate_scopes()
    response = client.get(f"{API}/{finished_job.pk}/download/")
    assert response.status_code == 403
    assert "export the list again" in response.json()["error"]["message"]
    Membership.objects.filter(user=people.hq).update(unit=tree.hq)
    invalidate_scopes()
    assert client.get(f"{API}/{finished_job.pk}/download/").status_code == 200


def test_a_job_runs_with_its_creators_permissions_at_run_time(in_alpha, archive, people, big):
    response = client_for(in_alpha, people.hq).get(f"{API}/customers.csv")
    Membership.objects.filter(user=people.hq).delete()
    invalidate_scopes()
    job = exporting.job_run(response.json()["id"])
    assert job.status == "failed" and not job.file
    assert "no longer export" in job.message


def test_old_exports_are_deleted_with_their_files(in_alpha, finished_job):
    path = finished_job.file.path
    assert exporting.jobs_cleanup(days=7) == 0
    ExportJob.objects.filter(pk=finished_job.pk).update(created_at=finished_job.created_at.replace(year=2020))
    assert exporting.jobs_cleanup(days=7) == 1
    assert not ExportJob.objects.filter(pk=finished_job.pk).exists()
    assert not os.path.exists(path)
    assert exporting.jobs_cleanup(days=7) == 0
