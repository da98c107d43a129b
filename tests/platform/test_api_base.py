"""What every API endpoint shares: authentication, one error format, capped page-number
pagination, and no server error whatever the input."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_context
from rest_framework.authtoken.models import Token

from kam.api.pagination import PagePagination
from tenants.models import Domain, Tenant, TenantEvent

pytestmark = pytest.mark.django_db

PUBLIC_HOST = "localhost"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "ops@platform.example", "ops@platform.example", "ops-pass-4711", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(staff):
    client = Client(HTTP_HOST=PUBLIC_HOST)
    client.force_login(staff)  # the connection is on the public schema here: a platform session
    return client


def _counts():
    return Tenant.objects.count(), Domain.objects.count(), TenantEvent.objects.count()


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


# --- Authentication -------------------------------------------------------------------------

def test_no_credentials_is_401_in_the_error_format(alpha):
    response = alpha.client().get("/api/v1/me/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token not-a-real-key", "Token", "Token a b", "Bearer xyz"])
def test_bad_credentials_are_401_never_500(alpha, header):
    response = alpha.client().get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    if header.startswith("Bearer"):  # another scheme is simply no credentials
        assert_error(response, 401, "not_authenticated")
    else:
        assert_error(response, 401, "authentication_failed")


def test_token_authentication(alpha):
    with schema_context(alpha.schema_name):
        admin = get_user_model().objects.get(username=alpha.admin_email)
        key = Token.objects.create(user=admin).key
    response = alpha.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    assert response.json()["email"] == alpha.admin_email and response.json()["id"] == admin.pk
    info = alpha.client().get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Token {key}").json()
    assert info == {"slug": alpha.slug, "name": alpha.tenant.name}


def test_session_authentication(alpha):
    client = alpha.client()
    assert client.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}).status_code == 302
    response = client.get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["username"] == alpha.admin_email


def test_session_writes_need_the_csrf_token_tokens_do_not(staff):
    browser = Client(HTTP_HOST=PUBLIC_HOST, enforce_csrf_checks=True)
    browser.force_login(staff)
    before = _counts()
    response = browser.post("/api/v1/tenants/", {"slug": "csrf-probe", "name": "Probe"}, content_type="application/json")
    assert "CSRF" in assert_error(response, 403, "permission_denied")["message"]
    assert _counts() == before
    key = Token.objects.create(user=staff).key
    machine = Client(HTTP_HOST=PUBLIC_HOST, enforce_csrf_checks=True)
    response = machine.post("/api/v1/tenants/", {"slug": "x"}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert_error(response, 400, "invalid")  # past authentication: only the input is wrong


# --- Pagination -----------------------------------------------------------------------------

@pytest.fixture
def many_tenants(alpha, beta):
    """250 tenant rows (rows only: listing them needs no schema), plus alpha and beta."""
    Tenant.objects.bulk_create(
        Tenant(slug=f"page-{i:03d}", name=f"Page {i}", schema_name=f"t_page_{i:03d}") for i in range(250)
    )
    return Tenant.objects.exclude(schema_name="public").count()


def test_page_size_is_capped_at_200(staff_client, many_tenants):
    response = staff_client.get("/api/v1/tenants/", {"page_size": 100000})
    body = response.json()
    assert response.status_code == 200
    assert len(body["results"]) == 200 and body["count"] == many_tenants == 252
    assert "page=2" in body["next"] and "page_size=100000" in body["next"] and body["previous"] is None
    rest = staff_client.get(body["next"]).json()
    assert len(rest["results"]) == 52 and rest["next"] is None and rest["previous"]
    slugs = [t["slug"] for t in body["results"] + rest["results"]]
    assert len(set(slugs)) == 252, "pages overlap or skip rows"


def test_default_and_explicit_page_sizes(staff_client, many_tenants):
    assert len(staff_client.get("/api/v1/tenants/").json()["results"]) == 50
    assert len(staff_client.get("/api/v1/tenants/", {"page_size": 7}).json()["results"]) == 7
    last = staff_client.get("/api/v1/tenants/", {"page": "last", "page_size": 100}).json()
    assert len(last["results"]) == 52 and last["next"] is None


def test_the_paginator_caps_any_queryset(rf, many_tenants):
    """The class itself, against a real queryset: the cap holds for every endpoint using it."""
    from rest_framework.request import Request

    request = Request(rf.get("/api/v1/anything/", {"page_size": "100000"}))
    paginator = PagePagination()
    page = paginator.paginate_queryset(Tenant.objects.order_by("slug"), request)
    assert len(page) == 200 == paginator.max_page_size
    assert paginator.get_paginated_response([]).data["count"] == Tenant.objects.count()


@pytest.mark.parametrize(
    "query",
    ["page=abc", "page=0", "page=-1", "page=1.5", "page=99999999999999999999999", "page=%00", "page_size=abc",
     "page_size=-5", "page_size=0", "page_size=99999999999999999999999", "page=2&page=x"],
)
def test_odd_page_parameters_never_500(staff_client, alpha, query):
    response = staff_client.get(f"/api/v1/tenants/?{query}")
    if response.status_code == 404:
        assert_error(response, 404, "not_found")
    else:
        assert response.status_code == 200 and 1 <= len(response.json()["results"]) <= 200


# --- Errors ---------------------------------------------------------------------------------

def test_validation_errors_name_the_field(staff_client, alpha):
    before = _counts()
    error = assert_error(staff_client.post("/api/v1/tenants/", {"slug": "Bad Slug!", "name": "X"}), 400, "invalid")
    assert list(error["fields"]) == ["slug"] and error["fields"]["slug"][0]
    error = assert_error(staff_client.post("/api/v1/tenants/", {}), 400, "invalid")
    assert set(error["fields"]) == {"slug", "name"}
    assert _counts() == before


@pytest.mark.parametrize("host, path", [
    (PUBLIC_HOST, "/api/v1/tenants/no-such-tenant/"),
    (PUBLIC_HOST, "/api/v1/tenants/" + "x" * 5000 + "/"),
    (PUBLIC_HOST, "/api/v1/no-such-endpoint/"),
    ("alpha.localhost", "/api/v1/no-such-endpoint/"),
    ("alpha.localhost", "/api/v1/me/extra/"),
    ("nobody.localhost", "/api/v1/me/"),
])
def test_unknown_ids_and_paths_are_json_404(staff, alpha, host, path):
    client = Client(HTTP_HOST=host)
    if host == PUBLIC_HOST:
        client.force_login(staff)
    else:
        with schema_context(alpha.schema_name):
            client.force_login(get_user_model().objects.get(username=alpha.admin_email))
    assert_error(client.get(path), 404, "not_found")


def test_unsupported_methods_are_405_in_the_error_format(staff_client, alpha):
    for method in ("PUT", "PATCH"):
        response = staff_client.generic(method, "/api/v1/tenants/alpha/", "{}", "application/json")
        assert_error(response, 405, "method_not_allowed")


def test_an_html_404_outside_the_api(alpha):
    response = alpha.client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("body, content_type, status, code", [
    ("{not json", "application/json", 400, "parse_error"),
    ('{"slug": "ok-slug", "name": ', "application/json", 400, "parse_error"),
    (b"\xff\xfe not utf-8", "application/json", 400, "parse_error"),
    ("slug=x&name=y", "text/plain", 415, "unsupported_media_type"),
    ("<xml/>", "application/xml", 415, "unsupported_media_type"),
    ("[]", "application/json", 400, "invalid"),
    ('"a string"', "application/json", 400, "invalid"),
    ('{"slug": ["a", "list"], "name": {"a": 1}}', "application/json", 400, "invalid"),
    ('{"slug": null, "name": null}', "application/json", 400, "invalid"),
    ('{"slug": "' + "x" * 100000 + '", "name": "Huge"}', "application/json", 400, "invalid"),
    ('{"slug": "nul-\\u0000-byte", "name": "Nul"}', "application/json", 400, "invalid"),
    ('{"slug": "nul-name", "name": "a\\u0000b"}', "application/json", 400, "invalid"),
])
def test_malformed_input_is_a_4xx_in_the_error_format(staff_client, alpha, body, content_type, status, code):
    before = _counts()
    data = body if isinstance(body, bytes) else body.encode()
    response = staff_client.generic("POST", "/api/v1/tenants/", data, content_type)
    assert_error(response, status, code)
    assert _counts() == before
