"""Shared fixtures. Tests run against the real PostgreSQL and Redis in DATABASE_URL/REDIS_URL
(or the embedded ones started by `kam test`).

Two tenants, ``alpha`` and ``beta``, are provisioned once per session and committed, so
child processes (a web server, a Celery worker) can see them. Everything a test writes
through the ``db`` fixture is rolled back after it, schemas included (PostgreSQL DDL is
transactional).
"""
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tenants.services import tenant_create


@dataclass
class TenantInfo:
    slug: str
    schema_name: str
    host: str
    admin_email: str
    admin_password: str
    tenant: object

    def client(self, **kwargs):
        return Client(HTTP_HOST=self.host, **kwargs)

    def admin_client(self):
        """A client on this tenant's host with the tenant admin logged in (session in the tenant's schema)."""
        client = self.client()
        with schema_context(self.schema_name):
            client.force_login(get_user_model().objects.get(username=self.admin_email))
        return client


SESSION_TENANTS = {
    "alpha": "阿尔法电信 Alpha Telecom",
    "beta": "贝塔移动 Beta Mobile",
}
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # Never provision into a real database: pytest-django must have switched to test_<name>.
    assert connection.settings_dict["NAME"].startswith("test_"), connection.settings_dict["NAME"]
    with django_db_blocker.unblock():
        call_command("migrate_all", verbosity=0)
        infos = {}
        for slug, name in SESSION_TENANTS.items():
            tenant, _ = tenant_create(
                actor="pytest", slug=slug, name=name, admin_email=f"admin@{slug}.example", admin_password=PASSWORD
            )
            infos[slug] = TenantInfo(slug, tenant.schema_name, f"{slug}.localhost", f"admin@{slug}.example", PASSWORD, tenant)
        connection.set_schema_to_public()
        from tenants.middleware import remember_hosts

        remember_hosts([info.host for info in infos.values()] + ["localhost"])
        _hosts_written.clear()
    django_db_setup_tenants.update(infos)
    yield


django_db_setup_tenants: dict = {}


@pytest.fixture
def tenants(django_db_setup):
    """The session's committed tenants by slug: ``tenants["alpha"].client()`` etc."""
    return django_db_setup_tenants


@pytest.fixture
def alpha(tenants):
    return tenants["alpha"]


@pytest.fixture
def beta(tenants):
    return tenants["beta"]


@pytest.fixture(autouse=True)
def _public_schema_after_test(django_db_blocker):
    from tenants.middleware import forget_hosts, remember_hosts

    hosts = [info.host for info in django_db_setup_tenants.values()] + ["localhost"]
    if _hosts_written:
        # An earlier test changed a tenant or domain (rolled back by now): cache the committed
        # rows again, so every test's first request finds its host cached, as a running
        # server's requests do (query counts compare equal from the first request on).
        forget_hosts(hosts)
        with django_db_blocker.unblock():
            remember_hosts(hosts)
        _hosts_written.clear()
    yield
    if connection.connection is not None:
        connection.set_schema_to_public()
    if _hosts_written:  # what the test cached of its own changes goes (its rollback may be later)
        forget_hosts(hosts)


_hosts_written = []


def _host_written(**kwargs):
    _hosts_written.append(True)


def pytest_configure(config):
    from django.db.models.signals import post_delete, post_save

    for signal in (post_save, post_delete):
        for sender in ("tenants.Tenant", "tenants.Domain"):
            signal.connect(_host_written, sender=sender, dispatch_uid=f"test-hosts-{signal is post_save}-{sender}")


# --- Inside alpha's schema (org tree and permission tests; each package defines its ``tree``) ---

@pytest.fixture
def in_alpha(alpha, db):
    with schema_context(alpha.schema_name):
        yield alpha


@pytest.fixture
def admin(in_alpha):
    """Alpha's tenant admin (a superuser inside the tenant)."""
    return get_user_model().objects.get(username=in_alpha.admin_email)


@pytest.fixture
def padmin(tree):
    """A provincial admin of P1 in the package's ``tree``."""
    from tests.support.people import make_user, member

    user = make_user("padmin")
    member(user, tree.p1, "provincial_admin")
    return user
