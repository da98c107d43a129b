"""Background exports in a real Celery worker (tests/support/processes.py) on the test database.

The worker only sees committed rows, so this module commits its own small world in alpha (two
units under a root, 30 + 10 customers, an exporter at each unit) and deletes all of it after
each test. The worker and this process share a media folder of the test run's own.
"""
import csv
import io
import os
import time
import uuid

from datetime import timedelta

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_tenants.utils import schema_context

from key_accounts import selectors
from key_accounts.models import Customer, ExportJob
from key_accounts.tasks import export_customers, exports_cleanup
from org_hierarchy.models import OrgLevel, OrgUnit
from permissions.models import Membership, Role
from permissions.scope import invalidate_scopes
from tests.permissions.conftest import add_unit
from tests.support.people import client_for
from tests.support.processes import celery_worker

API = "/api/v1/exports"
TIMEOUT = 60  # seconds for a job to finish; it takes well under one


class WorkerRun:
    def __init__(self, process, log_path, media):
        self.process, self.log_path, self.media = process, log_path, media

    def log(self):
        with open(self.log_path, errors="replace") as log:
            return log.read()


@pytest.fixture(scope="module")
def _worker(django_db_setup, pytestconfig, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    media = tmp_path_factory.mktemp("media")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAM_MEDIA_ROOT", str(media))
        with celery_worker(log_path) as process:
            run = WorkerRun(process, log_path, media)
            deadline = time.monotonic() + 60
            while " ready." not in run.log():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Celery worker did not start; {log_path}:\n{run.log()[-5000:]}")
                time.sleep(0.1)
            yield run


@pytest.fixture
def worker(_worker, settings):
    settings.MEDIA_ROOT = _worker.media  # where the worker writes
    start = _worker.log_path.stat().st_size
    yield _worker
    print(f"--- Celery worker log ---\n{_worker.log()[start:][-10000:]}")
    assert _worker.process.poll() is None, "the Celery worker died"


class World:
    """Committed in alpha: root -> A (30 customers), B (10); ``a_user`` exports A, ``b_user`` B."""

    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        rank = 1000 + int(tag[:4], 16) % 20000
        self.levels = [OrgLevel.objects.create(code=f"xw-{tag}-{i}", name=f"XW {i}", rank=rank + i) for i in range(2)]
        self.root = add_unit(f"xw-{tag}", self.levels[0])
        self.a = add_unit(f"xw-{tag}-a", self.levels[1], self.root)
        self.b = add_unit(f"xw-{tag}-b", self.levels[1], self.root)
        self.customers = Customer.objects.bulk_create(
            [Customer(name=f"甲市客户{i:02d}有限公司", org_unit=self.a, status="active" if i % 3 == 0 else "prospect")
             for i in range(30)]
            + [Customer(name=f"乙市客户{i:02d}", org_unit=self.b) for i in range(10)]
        )
        User = get_user_model()
        role = Role.objects.get(code="provincial_manager")
        self.a_user = User.objects.create_user(username=f"xw-a-{tag}@example.com", password="x")
        self.b_user = User.objects.create_user(username=f"xw-b-{tag}@example.com", password="x")
        Membership.objects.create(user=self.a_user, unit=self.a, role=role)
        Membership.objects.create(user=self.b_user, unit=self.b, role=role)
        invalidate_scopes()

    def delete(self):
        users = [self.a_user, self.b_user]
        for job in ExportJob.objects.filter(created_by__in=users):
            if job.file:
                job.file.storage.delete(job.file.name)
            job.delete()
        ids = [c.pk for c in self.customers]
        Customer.objects.filter(pk__in=ids).delete()
        Customer.pgh_event_model.objects.filter(pgh_obj_id__in=ids).delete()  # insert and delete events
        user_ids = {str(user.pk) for user in users}
        for session in Session.objects.all():
            if session.get_decoded().get("_auth_user_id") in user_ids:
                session.delete()
        Membership.objects.filter(user__in=users).delete()
        for user in users:
            user.delete()
        for unit in (self.a, self.b, self.root):
            OrgUnit.objects.filter(pk=unit.pk).delete()
        for level in self.levels:
            level.delete()
        invalidate_scopes()


@pytest.fixture
def world(alpha, django_db_blocker):
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        made = World()
    yield made
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        made.delete()


def wait_for(client, url):
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = client.get(url).json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


@pytest.mark.worker
def test_a_large_export_is_written_by_the_worker_in_the_tenant_and_downloaded_by_its_creator(
    worker, alpha, world, settings, django_db_blocker
):
    settings.KAM_EXPORT_SYNC_LIMIT = 10
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        client = client_for(alpha, world.a_user)
        response = client.get(f"{API}/customers.csv", HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 202, response.content
        job = wait_for(client, response.json()["url"])
        assert job["status"] == "done", job
        assert job["row_count"] == 30

        download = client.get(job["download_url"])
        assert download.status_code == 200
        body = b"".join(download.streaming_content)
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert rows[0][2] == "名称"  # the creator's language, carried to the worker
        expected = sorted(selectors.customers(user=world.a_user, action="export").values_list("pk", flat=True))
        assert sorted(int(row[0]) for row in rows[1:]) == expected == sorted(c.pk for c in world.customers[:30])
        assert all(row[2].startswith("甲市客户") for row in rows[1:])

        stored = ExportJob.objects.get(pk=job["id"])
        assert stored.file.name.startswith(f"{alpha.schema_name}/exports/")
        assert os.path.exists(os.path.join(worker.media, stored.file.name))

        # B's exporter may export too, but not this file; nor may anyone outside alpha's host.
        other = client_for(alpha, world.b_user)
        assert other.get(job["download_url"]).status_code == 404
        assert other.get(job["url"]).status_code == 404


@pytest.mark.worker
def test_a_filtered_xlsx_export_in_the_worker_and_its_cleanup(worker, alpha, world, settings, django_db_blocker):
    settings.KAM_EXPORT_SYNC_LIMIT = 5
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        client = client_for(alpha, world.a_user)
        response = client.get(f"{API}/customers.xlsx", {"status": "prospect", "ordering": "name"})
        assert response.status_code == 202, response.content
        job = wait_for(client, response.json()["url"])
        assert job["status"] == "done", job

        download = client.get(job["download_url"])
        workbook = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True)
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        prospects = [c for c in world.customers[:30] if c.status == "prospect"]
        assert [row[0] for row in rows[1:]] == [c.pk for c in sorted(prospects, key=lambda c: c.name)]
        assert len(rows) - 1 == job["row_count"] == 20

        # The periodic cleanup, in the worker: old jobs go with their files, recent ones stay.
        stored = ExportJob.objects.get(pk=job["id"])
        path = os.path.join(worker.media, stored.file.name)
        assert exports_cleanup.delay().get(timeout=TIMEOUT) == {"deleted": 0}
        ExportJob.objects.filter(pk=stored.pk).update(created_at=timezone.now() - timedelta(days=30))
        assert exports_cleanup.delay().get(timeout=TIMEOUT) == {"deleted": 1}
        assert not os.path.exists(path) and not ExportJob.objects.filter(pk=stored.pk).exists()


def test_the_task_takes_a_job_id_and_ignores_a_job_that_is_gone(alpha, db):
    """Eagerly, in this process (the same tenant switch as in the worker)."""
    result = export_customers.apply(args=[987654], headers={"_schema_name": alpha.schema_name}).get()
    assert result == {"job": 987654, "status": None, "rows": 0}
