"""Celery on the real Redis: tenant-aware tasks in a real worker, enqueue_on_commit, beat.

The worker (one per module) runs on the test database, so it only sees committed rows:
tests that need data in it write through ``committed`` (real commits, deleted afterwards)
instead of the ``db`` fixture. Messages we only want to look at go to a ``spy`` queue
that no worker consumes, read straight from Redis.
"""
import json
import os
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from kam.beat import ActiveTenantScheduler
from kam.celery import TenantUnavailable, app, enqueue_on_commit
from kam.settings import env
from kam.tasks import clear_expired_sessions, tenant_probe
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_delete, tenant_suspend
from tests.support.processes import celery_worker
from tests.support.tasks import flaky

TIMEOUT = 30  # seconds for a result; a task here takes milliseconds


class WorkerRun:
    def __init__(self, process, log_path):
        self.process, self.log_path = process, log_path

    def log(self, start=0):
        with open(self.log_path, errors="replace") as log:
            log.seek(start)
            return log.read()


@pytest.fixture(scope="module")
def _worker(django_db_setup, pytestconfig, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    with pytest.MonkeyPatch.context() as patch:
        # The worker imports the test-only tasks from the repository root.
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(pytestconfig.rootpath), os.environ.get("PYTHONPATH")])))
        with celery_worker(log_path, "--include", "tests.support.tasks") as process:
            run = WorkerRun(process, log_path)
            deadline = time.monotonic() + 60
            while " ready." not in run.log():
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Celery worker did not start; {log_path}:\n{run.log()[-5000:]}")
                time.sleep(0.1)
            yield run


@pytest.fixture
def worker(_worker):
    """The module's worker; its log for this test is printed, so pytest shows it on failure."""
    start = _worker.log_path.stat().st_size
    yield _worker
    print(f"--- Celery worker log ({_worker.log_path}) during this test ---\n{_worker.log(start)[-10000:]}")
    assert _worker.process.poll() is None, "the Celery worker died"


@pytest.fixture
def committed(django_db_blocker):
    """``committed(schema, Model, **fields)`` creates a row the worker can see; all are deleted afterwards."""
    made = []

    def create(schema, model, **fields):
        with django_db_blocker.unblock(), schema_context(schema):
            obj = model.objects.create(**fields)
        made.append((schema, obj))
        return obj

    yield create
    with django_db_blocker.unblock():
        for schema, obj in reversed(made):
            with schema_context(schema):
                type(obj).objects.filter(pk=obj.pk).delete()


class SpyQueue:
    """A queue on the real Redis that no worker reads: what was published, exactly."""

    def __init__(self):
        self.name = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-spy-{uuid.uuid4().hex[:8]}"
        self.redis = redis.Redis.from_url(env.REDIS_URL)

    def messages(self):
        # kombu's Redis transport pushes on the left and pops on the right: oldest last.
        return [json.loads(raw) for raw in reversed(self.redis.lrange(self.name, 0, -1))]

    def clear(self):
        self.redis.delete(self.name, f"_kombu.binding.{self.name}")


@pytest.fixture
def spy():
    queue = SpyQueue()
    yield queue
    queue.clear()


def users_in(schema, django_db_blocker):
    with django_db_blocker.unblock(), schema_context(schema):
        return get_user_model().objects.count()


def new_user(tag):
    return {"username": f"celery-{tag}-{uuid.uuid4().hex[:8]}@example.com"}


# --- Tenant-aware tasks in a real worker ------------------------------------------------


@pytest.mark.worker
def test_worker_runs_each_task_in_its_tenant_schema_and_sees_only_that_tenant(worker, alpha, beta, committed, django_db_blocker):
    User = get_user_model()
    committed(alpha.schema_name, User, **new_user("alpha"))
    committed(alpha.schema_name, User, **new_user("alpha"))
    alpha_users = users_in(alpha.schema_name, django_db_blocker)
    beta_users = users_in(beta.schema_name, django_db_blocker)
    public_users = users_in("public", django_db_blocker)
    assert alpha_users == beta_users + 2

    # Queued from inside the tenant: the schema header is added by the app.
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        in_alpha = tenant_probe.delay()
    with django_db_blocker.unblock(), schema_context(beta.schema_name):
        in_beta = tenant_probe.delay()
    in_alpha, in_beta = in_alpha.get(timeout=TIMEOUT), in_beta.get(timeout=TIMEOUT)

    assert in_alpha == {"schema": alpha.schema_name, "search_path": [alpha.schema_name, "public"], "users": alpha_users}
    assert in_beta == {"schema": beta.schema_name, "search_path": [beta.schema_name, "public"], "users": beta_users}

    # Straight after beta's task, one without any tenant header runs in public only.
    no_tenant = tenant_probe.apply_async(headers={"_schema_name": None}).get(timeout=TIMEOUT)
    assert no_tenant == {"schema": "public", "search_path": ["public"], "users": public_users}


@pytest.mark.worker
def test_a_task_for_a_missing_tenant_fails_instead_of_running_in_public(worker):
    result = tenant_probe.apply_async(headers={"_schema_name": "t_no_such_tenant"})
    with pytest.raises(TenantUnavailable):
        result.get(timeout=TIMEOUT)
    assert result.state == "FAILURE"
    assert "Task kam.tasks.tenant_probe[" + result.id + "] succeeded" not in worker.log()


@pytest.mark.worker
def test_a_transient_failure_is_retried_in_the_same_tenant(worker, alpha):
    with schema_context(alpha.schema_name):
        result = flaky.delay(f"flaky-{uuid.uuid4().hex}", failures=2)
    assert result.get(timeout=TIMEOUT) == {"schema": alpha.schema_name, "attempts": 3, "retries": 2}


@pytest.mark.django_db
def test_after_a_task_the_callers_schema_is_restored(alpha, beta):
    """Eager calls (e.g. from a request) go through the same switch and restore."""
    with schema_context(beta.schema_name):
        ran = tenant_probe.apply(headers={"_schema_name": alpha.schema_name}).get()
        assert connection.schema_name == beta.schema_name
        failed = tenant_probe.apply(headers={"_schema_name": "t_no_such_tenant"})
        assert connection.schema_name == beta.schema_name
    assert ran["schema"] == alpha.schema_name
    assert isinstance(failed.result, TenantUnavailable)


# --- enqueue_on_commit -----------------------------------------------------------------


class Rollback(Exception):
    pass


def test_enqueue_on_commit_sends_nothing_for_rolled_back_work(alpha, spy, django_db_blocker):
    User = get_user_model()
    username = new_user("rolled-back")["username"]
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        with pytest.raises(Rollback), transaction.atomic():
            User.objects.create(username=username)
            enqueue_on_commit(tenant_probe.s().set(queue=spy.name))
            raise Rollback
        with transaction.atomic():
            with pytest.raises(Rollback), transaction.atomic():  # a savepoint rolled back inside committed work
                enqueue_on_commit(tenant_probe.s().set(queue=spy.name))
                raise Rollback
        assert not User.objects.filter(username=username).exists()
    assert spy.messages() == []


def test_enqueue_on_commit_sends_once_after_commit_with_the_tenant_header(alpha, spy, committed, django_db_blocker):
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        with transaction.atomic():
            result = enqueue_on_commit(tenant_probe.s().set(queue=spy.name))
            assert spy.messages() == []  # not before the commit
    [message] = spy.messages()
    assert message["headers"]["_schema_name"] == alpha.schema_name
    assert message["headers"]["task"] == "kam.tasks.tenant_probe"
    assert message["headers"]["id"] == result.id


@pytest.mark.worker
def test_a_task_enqueued_on_commit_runs_in_the_tenant_and_sees_the_committed_work(worker, alpha, django_db_blocker):
    User = get_user_model()
    with django_db_blocker.unblock(), schema_context(alpha.schema_name):
        try:
            with transaction.atomic():
                user = User.objects.create(**new_user("on-commit"))
                result = enqueue_on_commit(tenant_probe)
            expected = User.objects.count()
            assert result.get(timeout=TIMEOUT) == {
                "schema": alpha.schema_name, "search_path": [alpha.schema_name, "public"], "users": expected
            }
        finally:
            User.objects.filter(pk=user.pk).delete()


# --- Beat and periodic tasks -----------------------------------------------------------


@pytest.fixture
def suspended_tenant(django_db_blocker):
    """A committed, suspended tenant (beat reads tenants in its own process, so no test transaction)."""
    with django_db_blocker.unblock():
        tenant, _ = tenant_create(actor="pytest", slug=f"dormant{uuid.uuid4().hex[:6]}", name="Dormant")
        tenant_suspend(actor="pytest", tenant=tenant)
        connection.set_schema_to_public()
    yield tenant
    with django_db_blocker.unblock():
        tenant_delete(actor="pytest", tenant=tenant, confirm=tenant.slug)


def test_beat_sends_each_periodic_job_once_per_active_tenant(alpha, beta, suspended_tenant, spy, tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        scheduler = ActiveTenantScheduler(app=app, schedule_filename=str(tmp_path / "celerybeat-schedule"))
        try:
            entry = scheduler.schedule["clear-expired-sessions@__all_tenants_only__"]  # from settings
            entry.options["queue"] = spy.name
            scheduler.apply_entry(entry)
        finally:
            scheduler.close()
        active = Tenant.objects.filter(status=Tenant.Status.ACTIVE).exclude(schema_name="public")
        active = sorted(active.values_list("schema_name", flat=True))

    messages = spy.messages()
    sent_to = sorted(message["headers"]["_schema_name"] for message in messages)
    assert sent_to == active  # one message per active tenant
    assert {alpha.schema_name, beta.schema_name} <= set(sent_to)
    assert suspended_tenant.schema_name not in sent_to
    assert {message["headers"]["task"] for message in messages} == {"kam.tasks.clear_expired_sessions"}
    assert connection.schema_name == "public"


@pytest.mark.worker
def test_clear_expired_sessions_deletes_only_expired_sessions_of_its_own_tenant(worker, alpha, beta, committed, django_db_blocker):
    now = timezone.now()

    def session(schema, expire_date):
        return committed(schema, Session, session_key=uuid.uuid4().hex, session_data="", expire_date=expire_date)

    alpha_expired = session(alpha.schema_name, now - timedelta(days=1))
    alpha_live = session(alpha.schema_name, now + timedelta(days=1))
    beta_expired = session(beta.schema_name, now - timedelta(days=1))

    with schema_context(alpha.schema_name):
        first = clear_expired_sessions.delay().get(timeout=TIMEOUT)
        again = clear_expired_sessions.delay().get(timeout=TIMEOUT)
    assert first["schema"] == alpha.schema_name and first["deleted"] >= 1
    assert again == {"schema": alpha.schema_name, "deleted": 0}  # idempotent

    def exists(schema, obj):
        with django_db_blocker.unblock(), schema_context(schema):
            return Session.objects.filter(pk=obj.pk).exists()

    assert not exists(alpha.schema_name, alpha_expired)
    assert exists(alpha.schema_name, alpha_live)
    assert exists(beta.schema_name, beta_expired)
