"""The import wizard's pages: upload -> map -> dry-run report -> commit, with the report's rows,
htmx polling of a running job, and who may see what."""
import json

import pytest

from key_accounts.models import ColumnMapping, Customer, ImportJob
from tests.key_accounts.test_import import IBM_MAPPING, csv_file, ibm_file
from tests.support.people import client_for

PAGES = "/customers/imports/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def text(response):
    return response.content.decode()


def test_the_wizard_imports_the_ibm_sample_end_to_end(in_alpha, tree, people):
    client = client_for(in_alpha, people.city)
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    assert IBM_MAPPING in text(client.get(f"{PAGES}new/"))

    response = client.post(f"{PAGES}new/", {"file": ibm_file(), "mapping": mapping.pk})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{PAGES}{job.pk}/map/"
    assert job.status == "uploaded"

    page = text(client.get(f"{PAGES}{job.pk}/map/"))
    for column in ("customerID", "Churn", "MonthlyCharges", "TotalCharges"):
        assert column in page
    assert "7590-VHVEG" in page  # the first values are shown next to each column
    assert 'value="external_id" selected' in page

    fields = {f"column_{i}": "" for i in range(21)}
    fields.update(column_0="external_id", column_20="status")  # customerID, Churn as in the mapping
    response = client.post(f"{PAGES}{job.pk}/map/", {
        **fields, "unit": tree.c11.pk, "encoding": "auto", "spec": json.dumps(mapping.spec), "save_as": "",
    })
    assert response.status_code == 302 and response["Location"] == f"{PAGES}{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.created_count, job.mapping_id) == ("checked", 7043, mapping.pk)

    page = text(client.get(f"{PAGES}{job.pk}/"))
    assert 'data-testid="commit"' in page and 'data-testid="count-created">7043<' in page

    response = client.post(f"{PAGES}{job.pk}/", {"action": "commit"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "done"
    assert Customer.objects.filter(org_unit=tree.c11, external_id__isnull=False).count() == 7043
    assert "7043" in text(client.get(PAGES))


def test_the_report_lists_every_invalid_row_with_line_column_and_reason(in_alpha, tree, people, settings):
    client = client_for(in_alpha, people.city)
    header = ["客户编号", "客户名称", "归属单位"]
    rows = [[f"V-{n}", "" if n % 2 else f"公司{n}", "C11" if n < 60 else "C21"] for n in range(120)]
    client.post(f"{PAGES}new/", {"file": csv_file(rows, header=header)})
    job = ImportJob.objects.get()
    page = text(client.get(f"{PAGES}{job.pk}/map/"))
    # Without a saved mapping, columns are matched by their names.
    assert 'value="external_id" selected' in page and 'value="name" selected' in page and 'value="org_unit" selected' in page
    response = client.post(f"{PAGES}{job.pk}/map/", {
        "column_0": "external_id", "column_1": "name", "column_2": "org_unit", "encoding": "auto", "spec": "{}",
        "save_as": "城市客户表",
    }, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302, text(response)
    job.refresh_from_db()
    assert job.status == "invalid" and job.mapping.name == "城市客户表"
    assert job.error_count == 60 + 60  # 60 blank names, 60 rows for C21 (30 of them also without a name)
    page = text(client.get(f"{PAGES}{job.pk}/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "120 problems" in page and "Page 1 of 3" in page and 'data-testid="commit"' not in page
    assert "<td class=\"text-end\">3</td><td class=\"text-break\">客户名称</td><td>This cell is required.</td>" in page
    page2 = text(client.get(f"{PAGES}{job.pk}/?page=2", HTTP_ACCEPT_LANGUAGE="en"))
    assert "You may not add customers to this unit." in page2
    assert not Customer.objects.filter(external_id__startswith="V-").exists()


def test_a_running_job_is_polled_with_htmx_and_shows_its_progress(in_alpha, tree, people):
    client = client_for(in_alpha, people.city)
    client.post(f"{PAGES}new/", {"file": csv_file([["Q-1", "公司", "", "企业", "C11", ""]])})
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status="queued", checked_at=job.created_at)
    page = text(client.get(f"{PAGES}{job.pk}/"))
    assert 'hx-trigger="every 1s"' in page and 'data-testid="import-progress"' in page
    partial = client.get(f"{PAGES}{job.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="import-report")
    assert text(partial).startswith('<div id="import-report"') and "<html" not in text(partial)


def test_pages_need_the_add_permission_and_jobs_are_their_creators(in_alpha, tree, people):
    assert client_for(in_alpha, people.hq).get(PAGES).status_code == 403
    assert in_alpha.client().get(PAGES).status_code == 302  # to the login page
    city = client_for(in_alpha, people.city)
    city.post(f"{PAGES}new/", {"file": csv_file([])})
    job = ImportJob.objects.get()
    province = client_for(in_alpha, people.province)
    for path in (f"{PAGES}{job.pk}/", f"{PAGES}{job.pk}/map/"):
        assert province.get(path).status_code == 404
    assert province.post(f"{PAGES}{job.pk}/", {"action": "commit"}).status_code == 404
    assert 'data-testid="no-imports"' in text(province.get(PAGES))
    assert client_for(in_alpha, people.admin).get(f"{PAGES}{job.pk}/").status_code == 200


def test_an_unreadable_file_is_explained_on_the_mapping_step(in_alpha, tree, people):
    client = client_for(in_alpha, people.city)
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.post(f"{PAGES}new/", {"file": SimpleUploadedFile("bad.csv", b"a,b\n\xff\xfe\x00,1\n")})
    job = ImportJob.objects.get()
    page = text(client.get(f"{PAGES}{job.pk}/map/", HTTP_ACCEPT_LANGUAGE="en"))
    assert 'data-testid="file-problem"' in page and "Line 2" in page
