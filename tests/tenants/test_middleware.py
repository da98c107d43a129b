"""Host routing and the suspension gate (tenants.middleware.TenantMiddleware)."""
import pytest
from django.db import connection
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import schema_context, schema_exists
from rest_framework.authtoken.models import Token

from tenants import services
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(alpha):
    """A browser session and an API token of alpha's admin, both working."""
    browser = alpha.client()
    assert browser.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}).status_code == 302
    with schema_context(alpha.schema_name):
        key = Token.objects.create(user=get_user_model().objects.get(username=alpha.admin_email)).key
    assert browser.get("/").status_code == 200
    assert alpha.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    return browser, key


def _alpha_data(alpha):
    with schema_context(alpha.schema_name):
        return get_user_model().objects.count(), Token.objects.count(), Session.objects.count()


def _assert_suspended_json(response):
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended" and response.json()["error"]["message"]


def test_suspension_blocks_on_the_very_next_request_and_keeps_the_data(alpha, beta, logged_in):
    browser, key = logged_in
    data = _alpha_data(alpha)
    services.tenant_suspend(actor="pytest", tenant=Tenant.objects.get(slug="alpha"))

    page = browser.get("/")
    assert page.status_code == 403 and 'data-testid="suspended"' in page.content.decode()
    assert alpha.admin_email not in page.content.decode()
    _assert_suspended_json(browser.get("/api/v1/me/"))
    _assert_suspended_json(alpha.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}"))
    _assert_suspended_json(alpha.client().get("/api/v1/no-such-endpoint/"))
    for path in ("/admin/", "/login/", "/api/docs/"):
        assert browser.get(path).status_code == 403, path
    # Nobody gets a new session either.
    fresh = alpha.client()
    assert fresh.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}).status_code == 403
    assert "sessionid" not in fresh.cookies

    assert _alpha_data(alpha) == data and schema_exists(alpha.schema_name)
    assert beta.admin_client().get("/").status_code == 200, "suspending alpha touched beta"

    connection.set_schema_to_public()  # services run on the platform side (API, admin, CLI)
    services.tenant_reactivate(actor="pytest", tenant=Tenant.objects.get(slug="alpha"))
    assert browser.get("/").status_code == 200  # the same session works again
    me = alpha.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert me.status_code == 200 and me.json()["email"] == alpha.admin_email


def test_suspension_through_the_platform_api_takes_effect_at_once(alpha, logged_in):
    browser, key = logged_in
    connection.set_schema_to_public()  # the platform's user and token live in the public schema
    staff = get_user_model().objects.create_user("ops@platform.example", "ops@platform.example", "x-4711", is_staff=True)
    platform = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    assert platform.post("/api/v1/tenants/alpha/suspend/").status_code == 200
    assert browser.get("/").status_code == 403
    _assert_suspended_json(alpha.client().get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Token {key}"))
    assert platform.post("/api/v1/tenants/alpha/reactivate/").status_code == 200
    assert browser.get("/").status_code == 200


@pytest.mark.parametrize("host", ["nobody.localhost", "alpha.beta.localhost", "t-alpha.localhost", "ALPHA-X.localhost"])
def test_an_unknown_host_is_404(alpha, host):
    page = Client(HTTP_HOST=host).get("/")
    assert page.status_code == 404 and host.lower() in page.content.decode()
    api = Client(HTTP_HOST=host).get("/api/v1/me/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_host_names_match_whatever_their_case_port_or_final_dot(alpha):
    client = alpha.admin_client()
    for host in ("ALPHA.localhost", "Alpha.LocalHost:8000", "alpha.localhost:8000", "alpha.localhost."):
        assert client.get("/", HTTP_HOST=host).status_code == 200, host


@pytest.mark.parametrize("host", ["alpha.evil.example", "alpha.localhost.evil.example", "evil.example:80@alpha.localhost"])
def test_a_host_outside_the_allowed_hosts_is_404(alpha, host):
    response = Client(HTTP_HOST=host).get("/")
    assert response.status_code == 404 and alpha.tenant.name not in response.content.decode()


def test_a_deleted_tenants_host_is_404(alpha):
    tenant, _ = services.tenant_create(actor="pytest", slug="brief", name="Brief")
    assert Client(HTTP_HOST="brief.localhost").get("/login/").status_code == 200
    services.tenant_delete(actor="pytest", tenant=tenant, confirm="brief")
    assert Client(HTTP_HOST="brief.localhost").get("/login/").status_code == 404


def test_hosts_are_cached_and_a_renamed_domain_stops_routing_at_once(alpha):
    from django.test.utils import CaptureQueriesContext

    from tenants.models import Domain

    client = Client(HTTP_HOST="alpha.localhost")
    assert client.get("/login/").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/login/").status_code == 200
    assert not any("tenants_domain" in q["sql"] for q in captured.captured_queries)  # from the cache

    connection.set_schema_to_public()
    domain = Domain.objects.get(domain="alpha.localhost")
    domain.domain = "alpha-new.localhost"
    domain.save()
    assert Client(HTTP_HOST="alpha.localhost").get("/login/").status_code == 404
    assert Client(HTTP_HOST="alpha-new.localhost").get("/login/").status_code == 200
    connection.set_schema_to_public()
    Domain.objects.filter(pk=domain.pk).delete()
    assert Client(HTTP_HOST="alpha-new.localhost").get("/login/").status_code == 404
