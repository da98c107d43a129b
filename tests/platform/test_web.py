"""The web shell through Django's test client: login, home, error and gate pages."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from kam.web import errors
from tenants.models import Tenant
from tenants.services import tenant_suspend

pytestmark = pytest.mark.django_db


def _logged_in(info, **headers):
    client = info.client(**headers)
    response = client.post("/login/", {"username": info.admin_email, "password": info.admin_password})
    assert response.status_code == 302, response.content.decode()
    return client


def test_home_asks_for_login_first(alpha):
    response = alpha.client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_login_page_names_the_tenant_and_labels_its_fields(alpha):
    html = alpha.client(HTTP_ACCEPT_LANGUAGE="en").get("/login/").content.decode()
    assert alpha.tenant.name in html
    assert '<label class="form-label" for="id_username">Email</label>' in html
    assert '<label class="form-label" for="id_password">Password</label>' in html
    assert 'autocomplete="current-password"' in html


def test_login_with_the_admin_credentials_lands_on_home(alpha):
    client = alpha.client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    html = response.content.decode()
    assert f'data-testid="tenant-name" title="{alpha.tenant.name}">{alpha.tenant.name}</a>' in html
    assert alpha.admin_email in html and "Log out" in html
    assert 'aria-current="page"' in html


def test_a_wrong_password_shows_the_error_and_keeps_the_email(alpha):
    client = alpha.client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post("/login/", {"username": alpha.admin_email, "password": "wrong"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your email and password didn't match. Please try again." in html
    assert f'value="{alpha.admin_email}"' in html
    assert "_auth_user_id" not in client.session


def test_empty_fields_are_marked_invalid(alpha):
    html = alpha.client(HTTP_ACCEPT_LANGUAGE="en").post("/login/", {"username": "", "password": ""}).content.decode()
    assert html.count('aria-invalid="true"') == 2
    assert 'data-testid="login-error"' not in html


def test_logout_is_a_post_and_ends_the_session(alpha):
    client = _logged_in(alpha)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_alpha_session_is_unknown_on_beta(alpha, beta):
    client = _logged_in(alpha)
    client.defaults["HTTP_HOST"] = beta.host
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_html_404_page_links_home_and_api_404_is_json(alpha):
    client = _logged_in(alpha)
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'href="/"' in html and alpha.admin_email in html
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_500_page_needs_no_database_and_quotes_the_request_id(django_assert_num_queries):
    request = RequestFactory().get("/anything/", HTTP_HOST="alpha.localhost")
    request.request_id = "abc123"
    with django_assert_num_queries(0):
        response = errors.server_error(request)
    html = response.content.decode()
    assert response.status_code == 500
    assert "abc123" in html and 'id="main"' in html
    assert "navbar-toggler" not in html  # no navigation that would need the user


def test_500_under_api_is_json():
    response = errors.server_error(RequestFactory().get("/api/v1/me/"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"


def test_suspended_tenant_gets_the_gate_page_in_the_users_language(alpha):
    tenant_suspend(actor="pytest", tenant=Tenant.objects.get(slug="alpha"))
    english = alpha.client(HTTP_ACCEPT_LANGUAGE="en").get("/login/")
    assert english.status_code == 403
    assert "Access suspended" in english.content.decode()
    assert "Contact your platform administrator." in english.content.decode()
    chinese = alpha.client(HTTP_ACCEPT_LANGUAGE="zh-CN").get("/login/")
    assert "访问已暂停" in chinese.content.decode() and "请联系平台管理员" in chinese.content.decode()
    api = alpha.client(HTTP_ACCEPT_LANGUAGE="en").get("/api/v1/tenant/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "tenant_suspended"


def test_unknown_host_page_names_the_host(tenants):
    response = Client(HTTP_HOST="nobody.localhost", HTTP_ACCEPT_LANGUAGE="en").get("/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Unknown address" in html and "nobody.localhost" in html
    assert "navbar-toggler" not in html


def test_platform_host_works_for_a_logged_in_platform_user(tenants):
    staff = get_user_model().objects.create_superuser("ops@platform.example", "ops@platform.example", "pw-12345-xyz")
    client = Client(HTTP_HOST="localhost", HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "KAM platform" in html and "ops@platform.example" in html
    assert 'action="/admin/logout/"' in html


def test_every_page_loads_only_local_assets(alpha):
    html = _logged_in(alpha).get("/").content.decode()
    for asset in ("/static/vendor/bootstrap/css/bootstrap.min.css", "/static/kam/app.css",
                  "/static/vendor/bootstrap/js/bootstrap.bundle.min.js", "/static/kam/app.js"):
        assert f'"{asset}"' in html
    assert "//cdn" not in html and "https://" not in html
