"""The roll-up tasks in a real Celery worker, on committed data in a tenant of their own.

A billing change, a customer change and a re-org each reach the HQ figure within seconds through
rollup_refresh; a burst of changes is coalesced into a few runs; rollup_full recomputes in the
worker; the nightly recompute is on beat's schedule for every tenant.
"""
import re
import time
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_context

from kam import history
from kam.celery import app
from key_accounts import services as ka
from key_accounts.models import BillingRecord
from org_hierarchy import services as org_services
from reporting import dirty, engine
from reporting.models import SubtreeMonth
from reporting.tasks import rollup_full
from tenants.services import tenant_create, tenant_delete
from tests.support.processes import celery_worker

TIMEOUT = 30  # seconds for anything to show up; the goal is a few
MONTH = engine.window()[1]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    with django_db_blocker.unblock():
        app.control.purge()  # this run's queue only: hooks of rolled-back tests may have queued tasks
    with celery_worker(log_path) as process:
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Celery worker did not start:\n{log_path.read_text(errors='replace')[-5000:]}")
            time.sleep(0.1)
        yield log_path
        assert process.poll() is None, "the Celery worker died"


class World:
    """A committed tenant: HQ -> P1 (C11), P2 (C21), one billed customer in each city."""

    def __init__(self, blocker):
        self.blocker = blocker
        with blocker.unblock():
            self.tenant, _ = tenant_create(actor="pytest", slug=f"roll{uuid.uuid4().hex[:6]}", name="Roll-ups")
            connection.set_schema_to_public()
        with self.inside():
            levels = [org_services.level_create(actor="system", code=c, name=c, rank=r)
                      for r, c in enumerate(("hq", "province", "city"))]
            self.hq = org_services.unit_create(actor="system", code="HQ", name="HQ", level=levels[0])
            self.p1 = org_services.unit_create(actor="system", code="P1", name="P1", level=levels[1], parent=self.hq)
            self.p2 = org_services.unit_create(actor="system", code="P2", name="P2", level=levels[1], parent=self.hq)
            self.c11 = org_services.unit_create(actor="system", code="C11", name="C11", level=levels[2], parent=self.p1)
            self.c21 = org_services.unit_create(actor="system", code="C21", name="C21", level=levels[2], parent=self.p2)
            self.customers = [ka.customer_create(actor="system", data={"name": f"客户{i}", "org_unit": unit})
                              for i, unit in enumerate((self.c11, self.c21))]
            self.accounts = [ka.billing_account_save(actor="system", customer=c, data={"number": f"W-{c.pk}"})
                             for c in self.customers]

    def inside(self):
        from contextlib import contextmanager

        @contextmanager
        def block():
            with self.blocker.unblock(), schema_context(self.tenant.schema_name):
                yield

        return block()

    def bill(self, index, revenue):
        with self.inside(), transaction.atomic(), history.acting("pytest", via="billing"):
            BillingRecord.objects.update_or_create(
                account=self.accounts[index], month=MONTH,
                defaults={"customer": self.customers[index], "revenue": Decimal(revenue)},
            )

    def revenue(self, unit):
        with self.inside():
            return sum(SubtreeMonth.objects.filter(unit_id=unit.pk, month=MONTH).values_list("revenue", flat=True))

    def wait_for(self, unit, expected):
        """Seconds until ``unit``'s subtree revenue of this month reads ``expected``."""
        started = time.monotonic()
        while time.monotonic() - started < TIMEOUT:
            if self.revenue(unit) == Decimal(expected):
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{unit.code} revenue is {self.revenue(unit)}, not {expected}, after {TIMEOUT}s")

    def delete(self):
        with self.blocker.unblock():
            with schema_context(self.tenant.schema_name):
                dirty.take(self.tenant.schema_name)
            tenant_delete(actor="pytest", tenant=self.tenant, confirm=self.tenant.slug)


@pytest.fixture
def world(worker, django_db_blocker):
    made = World(django_db_blocker)
    yield made
    made.delete()


def refresh_runs(log_path):
    return len(re.findall(r"Task reporting\.tasks\.rollup_refresh\[[^\]]+\] succeeded", log_path.read_text(errors="replace")))


@pytest.mark.worker
def test_changes_reach_the_hq_figure_within_seconds_through_the_worker(world, worker):
    with world.inside():
        assert rollup_full.delay().get(timeout=TIMEOUT)["rows"]["reporting_unit_month"] >= 2

    world.bill(0, "120.00")
    delay = world.wait_for(world.hq, "120.00")
    world.bill(1, "80.50")
    delay = max(delay, world.wait_for(world.hq, "200.50"))
    assert world.revenue(world.p1) == Decimal("120.00")
    print(f"billing change visible at HQ after {delay:.2f}s")
    assert delay < 5

    # A customer moved to another province: both chains follow.
    with world.inside():
        ka.customer_update(actor="system", customer=world.customers[0], data={"org_unit": world.c21})
    world.wait_for(world.p2, "200.50")
    assert world.revenue(world.p1) == 0

    # A re-org: C21 (with both customers now) moves under P1.
    with world.inside():
        org_services.unit_move(actor="system", unit=world.c21, new_parent=world.p1)
    world.wait_for(world.p1, "200.50")
    assert world.revenue(world.p2) == 0 and world.revenue(world.hq) == Decimal("200.50")


@pytest.mark.worker
def test_a_burst_of_changes_is_refreshed_in_a_few_runs(world, worker):
    with world.inside():
        rollup_full.delay().get(timeout=TIMEOUT)
    before = refresh_runs(worker)
    for cents in range(1, 31):
        world.bill(cents % 2, f"{cents}.00")
    world.wait_for(world.hq, "59.00")  # the last two: 29 + 30
    time.sleep(2)  # let any straggler run
    runs = refresh_runs(worker) - before
    assert 1 <= runs <= 10, runs
    with world.inside():
        assert dirty.pending(world.tenant.schema_name) == 0


def test_the_nightly_recompute_is_on_beats_schedule_for_every_tenant():
    entry = settings.CELERY_BEAT_SCHEDULE["rollups-nightly"]
    assert entry["task"] == "reporting.tasks.rollup_full" and "tenant_schemas" not in entry.get("options", {})
    assert "reporting.tasks.rollup_full" in app.tasks and "reporting.tasks.rollup_refresh" in app.tasks
    assert entry["schedule"].hour == {2}  # at night, Beijing time
