import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import schema_exists

from tenants.models import Tenant, TenantEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform_staff(db):
    return get_user_model().objects.create_superuser("ops@kam.example", "ops@kam.example", "pw-ops-123456")


@pytest.fixture
def staff_client(platform_staff):
    client = Client(HTTP_HOST="localhost")
    client.force_login(platform_staff)
    return client


def test_platform_staff_provision_a_tenant_in_the_admin(staff_client, alpha):
    response = staff_client.post(
        "/admin/tenants/tenant/add/", {"slug": "omega", "name": "Omega", "admin_email": "boss@omega.example"}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant = Tenant.objects.get(slug="omega")
    assert schema_exists(tenant.schema_name)
    assert TenantEvent.objects.get(tenant_slug="omega").actor_label == "ops@kam.example"


def test_the_admin_form_names_the_bad_field_and_creates_nothing(staff_client, alpha):
    before = Tenant.objects.count()
    response = staff_client.post("/admin/tenants/tenant/add/", {"slug": "alpha", "name": "Again"})
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert Tenant.objects.count() == before


def test_suspend_action_in_the_admin(staff_client, alpha):
    pk = Tenant.objects.get(slug="alpha").pk
    response = staff_client.post("/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [pk]})
    assert response.status_code == 302
    assert Tenant.objects.get(slug="alpha").status == Tenant.Status.SUSPENDED


def test_tenant_admins_never_see_the_tenant_registry(alpha):
    client = alpha.admin_client()
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"/admin/tenants/" not in index.content
    for url in ("/admin/tenants/tenant/", "/admin/tenants/tenantevent/", "/admin/tenants/domain/"):
        assert client.get(url).status_code in (403, 404)
