"""A large import in a real Celery worker: its progress shows in the API while it runs; killing
the worker (kill -9) in the middle of the commit leaves no customer, no history row and no
phone behind, the job is marked failed (not left "importing"), and committing it again with a
new worker imports every row.

The worker runs on the test database, so everything here is committed in the session tenant
``alpha`` (a unit and level of its own) and removed afterwards.
"""
import os
import secrets
import signal
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import translation
from django_tenants.utils import schema_context

from key_accounts.history import event_model
from key_accounts.importing import services
from key_accounts.models import Customer, ImportJob, PhoneNumber
from org_hierarchy.models import OrgLevel, OrgUnit
from tests.support.processes import celery_worker

pytestmark = pytest.mark.worker
ROWS = 45_000  # three chunks: the worker is killed after the first one is written
TIMEOUT = 300


@pytest.fixture
def media(settings, tmp_path, monkeypatch):
    """One media folder for this process and the worker (which reads the uploaded file)."""
    folder = tmp_path / "media"
    settings.MEDIA_ROOT = folder
    monkeypatch.setenv("KAM_MEDIA_ROOT", str(folder))
    return folder


@pytest.fixture
def place(alpha, django_db_blocker):
    """A committed level and unit in alpha for the imported customers; all removed afterwards."""
    tag = f"kill{secrets.token_hex(3)}"
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        level = OrgLevel.objects.create(code=tag, name=tag, rank=5000 + secrets.randbelow(20000))
        unit = OrgUnit.objects.add_root({"code": tag.upper(), "name": tag, "level": level})
        admin = get_user_model().objects.get(username=alpha.admin_email)
    yield tag, unit, admin
    with django_db_blocker.unblock(), schema_context(alpha.schema_name), connection.cursor() as cursor:
        customer, phone = Customer._meta.db_table, PhoneNumber._meta.db_table
        events = event_model(Customer)._meta.db_table
        cursor.execute(f"DELETE FROM {phone} WHERE customer_id IN (SELECT id FROM {customer} WHERE org_unit_id = %s)", [unit.pk])
        cursor.execute(f"DELETE FROM {customer} WHERE org_unit_id = %s", [unit.pk])
        cursor.execute(f"DELETE FROM {events} WHERE org_unit_id = %s", [unit.pk])
        ImportJob.objects.filter(created_by=admin, original_name__startswith=tag).delete()
        unit.delete()
        level.delete()


def big_file(tag, unit_code):
    path_rows = [["编号", "名称", "单位", "电话"]]
    path_rows += [[f"{tag}-{n:06d}", f"批量公司{n}", unit_code, f"139{n:08d}"] for n in range(ROWS)]
    lines = "\n".join(",".join(row) for row in path_rows) + "\n"
    return SimpleUploadedFile(f"{tag}.csv", lines.encode("utf-8"), content_type="text/csv")


SPEC = {"columns": {"编号": {"field": "external_id"}, "名称": {"field": "name"}, "单位": {"field": "org_unit"},
                    "电话": {"field": "phone"}}}


class Worker:
    def __init__(self, log_path):
        self.log_path = log_path
        self.context = celery_worker(log_path)

    def __enter__(self):
        self.process = self.context.__enter__()
        deadline = time.monotonic() + 60
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Celery worker did not start:\n{self.log()[-5000:]}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)
        print(f"--- worker log {self.log_path} ---\n{self.log()[-6000:]}")

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()


def poll(client, job_id, until, timeout=TIMEOUT):
    """GET the job through the API until ``until(body)``; returns every body seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/imports/{job_id}/").json()
        seen.append(body)
        if until(body):
            return seen
        time.sleep(0.05)
    pytest.fail(f"job {job_id} never got there; last: {seen[-1] if seen else None}")


def test_a_worker_killed_mid_import_leaves_nothing_and_the_job_is_marked_failed(alpha, place, media, tmp_path,
                                                                             django_db_blocker):
    tag, unit, admin = place
    with django_db_blocker.unblock():
        client = alpha.admin_client()
        with Worker(tmp_path / "worker-1.log") as worker:
            with schema_context(alpha.schema_name), translation.override("en"):  # the job's language
                job = services.job_create(actor=admin, upload=big_file(tag, unit.code), spec=SPEC)
            assert job.status == "check_queued"  # too big for the request: queued for the worker
            poll(client, job.pk, lambda body: body["status"] == "checked")

            with schema_context(alpha.schema_name):
                job = services.job_commit(actor=admin, job=job)
            assert job.status == "queued"
            seen = poll(client, job.pk, lambda body: body["status"] == "importing"
                        and body["progress"]["processed_rows"] >= 20_000)
            running = seen[-1]
            assert running["progress"]["phase"] == "writing" and running["progress"]["total_rows"] == ROWS
            # The first chunk is written inside the still open transaction: kill the worker now.
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=30)

        failed = poll(client, job.pk, lambda body: body["status"] != "importing", timeout=60)[-1]
        assert failed["status"] == "failed", failed
        assert "Nothing was written" in failed["message"]
        with schema_context(alpha.schema_name):
            assert not Customer.objects.filter(org_unit=unit).exists()
            assert not Customer.objects.filter(external_id__startswith=f"{tag}-").exists()
            assert not event_model(Customer).objects.filter(org_unit_id=unit.pk).exists()
            assert not PhoneNumber.objects.filter(digits__startswith="139", customer__org_unit=unit).exists()

        # The job can be committed again; a new worker imports every row.
        with Worker(tmp_path / "worker-2.log"):
            with schema_context(alpha.schema_name):
                services.job_commit(actor=admin, job=ImportJob.objects.get(pk=job.pk))
            done = poll(client, job.pk, lambda body: body["status"] in ("done", "invalid", "failed"))[-1]
        assert (done["status"], done["created_count"]) == ("done", ROWS), done
        with schema_context(alpha.schema_name):
            assert Customer.objects.filter(org_unit=unit).count() == ROWS
            assert event_model(Customer).objects.filter(org_unit_id=unit.pk, pgh_label="insert").count() == ROWS


# --- Liveness in-process (this test also makes pytest-django set up the test database when the
# module runs alone: the worker test above only uses committed data) ----------------------------

@pytest.mark.django_db
def test_a_running_job_is_failed_only_once_no_session_holds_its_lock(tree, people, media):
    import psycopg

    from key_accounts.importing.progress import _lock_name
    from tests.key_accounts.test_import import SPEC as ROW_SPEC
    from tests.key_accounts.test_import import csv_file

    job = services.job_create(actor=people.city, upload=csv_file([]), spec=ROW_SPEC, start=False)
    ImportJob.objects.filter(pk=job.pk).update(status="importing")
    job.refresh_from_db()
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or None, user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=db["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [_lock_name(job.pk)])
        assert services.job_refresh(job).status == "importing"  # alive elsewhere: left alone
    for _attempt in range(100):  # the server ends the closed session (and frees its lock) a moment later
        if services.job_refresh(job).status == "failed":
            break
        time.sleep(0.05)
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert services.job_refresh(job).status == "failed"
