"""The import API (R7): upload with a saved or inline mapping (the dry run starts at once), the
job with its progress and paginated errors, commit; column mappings CRUD; who may see and do
what; pinned query counts."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from key_accounts.models import ColumnMapping, Customer, ImportJob
from permissions.models import ModuleToggle
from tests.key_accounts.test_import import HEADER, IBM_MAPPING, SPEC, csv_file, ibm_file
from tests.support.people import client_for

API = "/api/v1"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clients(in_alpha, people):
    return {name: client_for(in_alpha, getattr(people, name)) for name in ("hq", "province", "city", "admin")}


def upload(client, file, **data):
    return client.post(f"{API}/imports/", {"file": file, **data}, HTTP_ACCEPT_LANGUAGE="en")


def bad_rows(count):
    return csv_file([[f"Z-{n}", "", "", "企业", "C11", ""] for n in range(count)])


def test_upload_with_the_shipped_mapping_checks_then_commit_imports(tree, clients):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    response = upload(clients["city"], ibm_file(), mapping=mapping.pk, unit=tree.c11.pk)
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["status"], job["total_rows"], job["created_count"], job["error_count"]) == ("checked", 7043, 7043, 0)
    assert job["mapping_name"] == IBM_MAPPING and job["progress"]["phase"] == "done"
    assert response["Location"].endswith(f"/api/v1/imports/{job['id']}/")
    assert not Customer.objects.filter(external_id="7590-VHVEG").exists()

    response = clients["city"].post(f"{API}/imports/{job['id']}/commit/")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["created_count"]) == ("done", 7043)
    assert response.json()["progress"]["percent"] == 100
    assert Customer.objects.filter(org_unit=tree.c11, external_id="7590-VHVEG").exists()

    again = clients["city"].post(f"{API}/imports/{job['id']}/commit/", HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 400 and "status" in again.json()["error"]["fields"]


def test_an_inline_spec_and_every_error_paginated(tree, clients):
    response = upload(clients["city"], bad_rows(5), spec=json.dumps(SPEC))
    assert response.status_code == 201
    job_id = response.json()["id"]
    body = clients["city"].get(f"{API}/imports/{job_id}/?page_size=2", HTTP_ACCEPT_LANGUAGE="en").json()
    assert (body["status"], body["error_count"]) == ("invalid", 5)
    assert body["errors"]["count"] == 5 and len(body["errors"]["results"]) == 2 and body["errors"]["next"]
    assert body["errors"]["results"][0] == {"line": 2, "column": "名称", "reason": "This cell is required.", "value": ""}
    last = clients["city"].get(f"{API}/imports/{job_id}/?page_size=2&page=3").json()
    assert [e["line"] for e in last["errors"]["results"]] == [6]
    assert clients["city"].post(f"{API}/imports/{job_id}/commit/").status_code == 400
    assert not Customer.objects.filter(external_id__startswith="Z-").exists()


def test_a_large_file_is_checked_in_the_background(tree, clients, settings):
    settings.KAM_IMPORT_INLINE_BYTES = 10
    response = upload(clients["city"], csv_file([["L-1", "大文件", "", "企业", "C11", ""]]), spec=json.dumps(SPEC))
    assert response.status_code == 202
    assert response.json()["status"] == "check_queued"
    assert response["Location"].endswith(f"/imports/{response.json()['id']}/")


def test_bad_requests_name_their_field(tree, clients):
    mapping = ColumnMapping.objects.get(name=IBM_MAPPING)
    city = clients["city"]
    cases = [
        ({"mapping": mapping.pk}, "unit"),  # the IBM mapping leaves the unit open
        ({"mapping": mapping.pk, "unit": tree.c21.pk}, "unit"),  # outside the city manager's scope
        ({"mapping": 999999}, "mapping"),
        ({"spec": "{not json"}, "spec"),
        ({"spec": json.dumps({"columns": {"a": {"field": "nope"}}})}, "spec"),
        ({}, "mapping"),
    ]
    for data, field in cases:
        response = upload(city, ibm_file(), **data)
        assert response.status_code == 400, (data, response.content)
        assert field in response.json()["error"]["fields"], (data, response.json())
    response = upload(city, SimpleUploadedFile("customers.pdf", b"%PDF"), spec=json.dumps(SPEC))
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    assert not ImportJob.objects.exists()


def test_jobs_are_seen_by_their_creator_and_tenant_admins_only(tree, clients, people):
    job_id = upload(clients["city"], bad_rows(1), spec=json.dumps(SPEC)).json()["id"]
    assert clients["city"].get(f"{API}/imports/{job_id}/").status_code == 200
    assert clients["admin"].get(f"{API}/imports/{job_id}/").status_code == 200
    assert clients["province"].get(f"{API}/imports/{job_id}/").status_code == 404  # a manager above: not theirs
    assert clients["province"].post(f"{API}/imports/{job_id}/commit/").status_code == 404
    assert [j["id"] for j in clients["city"].get(f"{API}/imports/").json()["results"]] == [job_id]
    assert clients["province"].get(f"{API}/imports/").json()["results"] == []
    assert [j["id"] for j in clients["admin"].get(f"{API}/imports/").json()["results"]] == [job_id]


def test_without_the_add_permission_the_import_api_is_403(tree, clients):
    for path in ("imports/", "column-mappings/"):
        assert clients["hq"].get(f"{API}/{path}").status_code == 403
    assert upload(clients["hq"], bad_rows(1), spec=json.dumps(SPEC)).status_code == 403
    assert not ImportJob.objects.exists()


def test_where_the_customers_module_is_off_the_import_api_does_not_exist(tree, clients):
    ModuleToggle.objects.create(level=tree.levels["city"], module="customers", enabled=False)
    from permissions.scope import invalidate_scopes

    invalidate_scopes()
    assert clients["city"].get(f"{API}/imports/").status_code == 404
    assert clients["province"].get(f"{API}/imports/").status_code == 200


def test_the_job_page_costs_the_same_queries_for_3_or_300_errors(tree, clients):
    def queries(count):
        job_id = upload(clients["city"], bad_rows(count), spec=json.dumps(SPEC)).json()["id"]
        clients["city"].get(f"{API}/imports/{job_id}/")  # warm the scope cache
        with CaptureQueriesContext(connection) as captured:
            response = clients["city"].get(f"{API}/imports/{job_id}/?page_size=200")
        assert response.json()["error_count"] == count
        ours = [q["sql"] for q in captured.captured_queries if "key_accounts_import" in q["sql"]]
        return len(captured), len(ours)

    few, many = queries(3), queries(300)
    assert few == many
    assert many[1] == 3, many  # the job, the count of its errors, one page of them


# --- Column mappings --------------------------------------------------------------------------

def test_column_mappings_crud_and_who_may_change_them(tree, clients, people):
    shipped = ColumnMapping.objects.get(name=IBM_MAPPING)
    city, province, admin = clients["city"], clients["province"], clients["admin"]
    listed = city.get(f"{API}/column-mappings/").json()
    assert IBM_MAPPING in [m["name"] for m in listed["results"]]

    created = city.post(f"{API}/column-mappings/", {"name": "我的格式", "spec": SPEC}, content_type="application/json")
    assert created.status_code == 201, created.content
    mapping_id = created.json()["id"]
    assert created.json()["created_by"] == people.city.get_username()
    assert city.patch(f"{API}/column-mappings/{mapping_id}/", {"description": "城市的"},
                      content_type="application/json").status_code == 200
    # Someone else's mapping: only its creator or a tenant admin changes it; the shipped one, admins only.
    assert province.patch(f"{API}/column-mappings/{mapping_id}/", {"name": "x"}, content_type="application/json").status_code == 403
    assert city.delete(f"{API}/column-mappings/{shipped.pk}/").status_code == 403
    assert admin.patch(f"{API}/column-mappings/{shipped.pk}/", {"description": "ours"},
                       content_type="application/json").status_code == 200

    bad = city.post(f"{API}/column-mappings/", {"name": "坏的", "spec": {"columns": {"a": {"field": "nope"}}}},
                    content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert bad.status_code == 400 and "spec" in bad.json()["error"]["fields"]
    same_name = city.post(f"{API}/column-mappings/", {"name": "我的格式", "spec": SPEC}, content_type="application/json")
    assert same_name.status_code == 400 and "name" in same_name.json()["error"]["fields"]

    assert admin.delete(f"{API}/column-mappings/{mapping_id}/").status_code == 204
    assert not ColumnMapping.objects.filter(pk=mapping_id).exists()
    assert city.get(f"{API}/column-mappings/{mapping_id}/").status_code == 404


def test_a_saved_mapping_is_used_by_id(tree, clients):
    mapping_id = clients["city"].post(f"{API}/column-mappings/", {"name": "城市格式", "spec": SPEC},
                                      content_type="application/json").json()["id"]
    rows = [["M-1", "按名称导入公司", "", "企业", "C11", "13800138000"]]
    job = upload(clients["city"], csv_file(rows, header=HEADER), mapping=mapping_id).json()
    assert (job["status"], job["created_count"], job["mapping"]) == ("checked", 1, mapping_id)
