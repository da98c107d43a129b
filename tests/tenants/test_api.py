"""The platform's tenant API: /api/v1/tenants/ on the platform host, for platform staff only."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context, schema_exists
from rest_framework.authtoken.models import Token

from tenants import services
from tenants.models import Domain, Tenant, TenantEvent

pytestmark = pytest.mark.django_db

PUBLIC_HOST = "localhost"


def _counts():
    return Tenant.objects.count(), Domain.objects.count(), TenantEvent.objects.count()


def _client(token=None, user=None):
    client = Client(HTTP_HOST=PUBLIC_HOST, **({"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}))
    if user is not None:
        client.force_login(user)  # the connection is on the public schema: a platform session
    return client


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops@platform.example", "ops@platform.example", "ops-pass-4711", is_staff=True)


@pytest.fixture
def api(staff):
    """Platform staff calling with a token, as a script would."""
    return _client(token=Token.objects.create(user=staff).key)


def test_staff_list_tenants(api, alpha, beta):
    response = api.get("/api/v1/tenants/")
    assert response.status_code == 200
    rows = {row["slug"]: row for row in response.json()["results"]}
    assert {"alpha", "beta"} <= set(rows) and "public" not in rows
    assert rows["alpha"]["name"] == alpha.tenant.name and rows["alpha"]["status"] == "active"
    assert rows["alpha"]["domains"] == ["alpha.localhost"] and rows["alpha"]["schema_name"] == "t_alpha"
    assert "admin_password" not in rows["alpha"]


def test_create_returns_the_admin_password_once_and_it_works(api, staff, alpha):
    response = api.post(
        "/api/v1/tenants/", {"slug": "gamma", "name": "伽马通信 Gamma", "admin_email": "boss@gamma.example"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    password = body["admin_password"]
    assert password and len(password) >= 12
    assert body["slug"] == "gamma" and body["status"] == "active" and body["domains"] == ["gamma.localhost"]
    assert schema_exists("t_gamma")
    event = TenantEvent.objects.get(tenant_slug="gamma", action="created")
    assert event.actor == staff and event.actor_label == staff.username

    login = Client(HTTP_HOST="gamma.localhost").post("/login/", {"username": "boss@gamma.example", "password": password})
    assert login.status_code == 302 and login["Location"] == "/"
    # Never again: neither the detail nor the list shows it.
    assert "admin_password" not in api.get("/api/v1/tenants/gamma/").json()
    assert password not in api.get("/api/v1/tenants/").content.decode()


def test_create_without_an_admin_and_with_a_domain(api, alpha):
    response = api.post("/api/v1/tenants/", {"slug": "delta", "name": "Delta", "domain": "crm-delta.localhost"})
    assert response.status_code == 201
    assert response.json()["admin_password"] is None and response.json()["domains"] == ["crm-delta.localhost"]
    with schema_context("t_delta"):
        assert not get_user_model().objects.exists()


def test_retrieve(api, alpha):
    response = api.get("/api/v1/tenants/alpha/")
    assert response.status_code == 200
    assert response.json()["slug"] == "alpha" and response.json()["domains"] == ["alpha.localhost"]


def test_suspend_and_reactivate(api, staff, alpha):
    response = api.post("/api/v1/tenants/alpha/suspend/")
    assert response.status_code == 200
    assert response.json()["status"] == "suspended" and response.json()["suspended_at"]
    assert Tenant.objects.get(slug="alpha").status == "suspended"
    response = api.post("/api/v1/tenants/alpha/reactivate/")
    assert response.status_code == 200
    assert response.json()["status"] == "active" and response.json()["suspended_at"] is None
    actions = TenantEvent.objects.filter(tenant_slug="alpha", actor=staff).values_list("action", flat=True)
    assert list(actions[:2]) == ["reactivated", "suspended"]


def test_delete_needs_the_slug_repeated(api, alpha):
    services.tenant_create(actor="pytest", slug="doomed", name="Doomed", admin_email="x@doomed.example")
    before = _counts()
    for query in ("", "?confirm=", "?confirm=yes", "?confirm=DOOMED", "?confirm=alpha"):
        response = api.delete(f"/api/v1/tenants/doomed/{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "invalid" and "confirm" in response.json()["error"]["fields"]
    assert _counts() == before and schema_exists("t_doomed")

    assert api.delete("/api/v1/tenants/doomed/?confirm=doomed").status_code == 204
    assert not schema_exists("t_doomed")
    assert not Tenant.objects.filter(slug="doomed").exists() and not Domain.objects.filter(domain="doomed.localhost").exists()
    assert TenantEvent.objects.filter(tenant_slug="doomed", action="deleted").exists()
    assert api.get("/api/v1/tenants/doomed/").status_code == 404
    assert Tenant.objects.filter(slug="alpha").exists()


# Every endpoint with the method that would change something.
ENDPOINTS = [
    ("get", "/api/v1/tenants/"),
    ("post", "/api/v1/tenants/"),
    ("get", "/api/v1/tenants/alpha/"),
    ("delete", "/api/v1/tenants/alpha/?confirm=alpha"),
    ("post", "/api/v1/tenants/alpha/suspend/"),
    ("post", "/api/v1/tenants/alpha/reactivate/"),
]
CREATE = {"slug": "intruder", "name": "Intruder", "admin_email": "me@intruder.example"}


def _refused(client, expected):
    before = _counts()
    for method, path in ENDPOINTS:
        response = getattr(client, method)(path, CREATE, content_type="application/json") if method == "post" else getattr(client, method)(path)
        assert response.status_code == expected, (method, path, response.status_code)
        assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed", "permission_denied")
        assert "alpha" not in response.content.decode()
    assert _counts() == before and Tenant.objects.get(slug="alpha").status == "active" and not schema_exists("t_intruder")


def test_anonymous_callers_get_401(alpha):
    _refused(_client(), 401)


def test_platform_users_without_staff_get_403(alpha):
    user = get_user_model().objects.create_user("clerk@platform.example", "clerk@platform.example", "clerk-pass-4711")
    _refused(_client(user=user), 403)
    _refused(_client(token=Token.objects.create(user=user).key), 403)


def test_tenant_credentials_get_401_on_the_platform_host(alpha):
    """A tenant's superuser is nobody on the platform host: neither token nor session carries over."""
    with schema_context(alpha.schema_name):
        key = Token.objects.create(user=get_user_model().objects.get(username=alpha.admin_email)).key
    _refused(_client(token=key), 401)
    tenant_browser = alpha.client()
    assert tenant_browser.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}).status_code == 302
    session = tenant_browser.cookies["sessionid"].value
    platform_browser = _client()
    platform_browser.cookies["sessionid"] = session
    _refused(platform_browser, 401)


def test_the_tenant_api_does_not_exist_on_tenant_hosts(alpha):
    client = alpha.admin_client()
    assert client.get("/api/v1/tenants/").status_code == 404
    assert client.post("/api/v1/tenants/alpha/suspend/").status_code == 404
    assert Tenant.objects.get(slug="alpha").status == "active"


@pytest.mark.parametrize("payload, field", [
    ({"slug": "ab", "name": "Short"}, "slug"),
    ({"slug": "Bad Slug", "name": "Spaces"}, "slug"),
    ({"slug": "under_score", "name": "Underscore"}, "slug"),
    ({"slug": "ends-with-", "name": "Hyphen"}, "slug"),
    ({"slug": "x" * 41, "name": "Long"}, "slug"),
    ({"slug": "public", "name": "Reserved"}, "slug"),
    ({"slug": "alpha", "name": "Taken"}, "slug"),
    ({"slug": "ALPHA", "name": "Taken, shouted"}, "slug"),
    ({"name": "No slug"}, "slug"),
    ({"slug": "nameless"}, "name"),
    ({"slug": "blank-name", "name": "   "}, "name"),
    ({"slug": "bad-mail", "name": "Mail", "admin_email": "not-an-email"}, "admin_email"),
    ({"slug": "dup-host", "name": "Host", "domain": "beta.localhost"}, "domain"),
    ({"slug": "bad-host", "name": "Host", "domain": "bad host"}, "domain"),
])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(api, alpha, beta, payload, field):
    before = _counts()
    response = api.post("/api/v1/tenants/", payload, content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"], error
    assert _counts() == before
    slug = payload.get("slug")
    if isinstance(slug, str) and slug not in ("alpha", "ALPHA", "public"):
        assert not schema_exists("t_" + slug.replace("-", "_"))
