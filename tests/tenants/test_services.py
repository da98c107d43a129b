import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from tenants import services
from tenants.models import Domain, Tenant, TenantEvent


def _counts():
    return Tenant.objects.count(), Domain.objects.count(), TenantEvent.objects.count()


@pytest.mark.django_db
def test_create_clones_the_template_and_makes_an_admin(alpha):
    tenant, password = services.tenant_create(actor="pytest", slug="gamma", name="Gamma", admin_email="boss@gamma.example")
    assert schema_exists("t_gamma")
    assert tenant.get_primary_domain().domain == "gamma.localhost"
    with schema_context("t_gamma"):
        from django.contrib.auth import get_user_model

        admin = get_user_model().objects.get()
        assert admin.username == "boss@gamma.example" and admin.is_superuser and admin.check_password(password)
    event = TenantEvent.objects.get(tenant_slug="gamma")
    assert event.action == "created" and event.actor_label == "pytest"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "slug, field",
    [("ab", "slug"), ("Has Space", "slug"), ("under_score", "slug"), ("-lead", "slug"), ("public", "slug"),
     ("alpha", "slug"), ("x" * 41, "slug")],
)
def test_bad_or_taken_slugs_are_refused_and_change_nothing(alpha, slug, field):
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(actor="pytest", slug=slug, name="X")
    assert field in exc.value.message_dict
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("domain", ["alpha.localhost", "bad host", "-x.localhost", ""])
def test_bad_or_taken_domains_are_refused_and_change_nothing(alpha, domain):
    before = _counts()
    with pytest.raises(ValidationError) as exc:
        services.tenant_create(actor="pytest", slug="delta", name="Delta", domain=domain or "..")
    assert "domain" in exc.value.message_dict
    assert _counts() == before and not schema_exists("t_delta")


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["clone_template", "create_tenant_admin", "_audit"])
def test_a_failure_at_any_step_leaves_nothing(alpha, monkeypatch, step):
    """Inject a failure into each provisioning step: no schema, tenant row or domain remains."""
    real = getattr(services, step)

    def fail_after(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError(f"injected failure in {step}")

    monkeypatch.setattr(services, step, fail_after)
    before = _counts()
    with pytest.raises(RuntimeError, match="injected"):
        services.tenant_create(actor="pytest", slug="epsilon", name="Epsilon", admin_email="a@epsilon.example")
    connection.set_schema_to_public()
    assert _counts() == before
    assert not schema_exists("t_epsilon")
    assert not Domain.objects.filter(domain="epsilon.localhost").exists()


@pytest.mark.django_db
def test_suspend_and_reactivate_are_audited(alpha):
    tenant = Tenant.objects.get(slug="alpha")
    services.tenant_suspend(actor="pytest", tenant=tenant)
    assert Tenant.objects.get(slug="alpha").status == "suspended"
    services.tenant_reactivate(actor="pytest", tenant=tenant)
    assert Tenant.objects.get(slug="alpha").status == "active"
    assert list(TenantEvent.objects.filter(tenant_slug="alpha").values_list("action", flat=True)[:2]) == [
        "reactivated", "suspended"
    ]


@pytest.mark.django_db
def test_delete_needs_the_slug_as_confirmation(alpha):
    tenant, _ = services.tenant_create(actor="pytest", slug="zeta", name="Zeta")
    with pytest.raises(ValidationError) as exc:
        services.tenant_delete(actor="pytest", tenant=tenant, confirm="yes")
    assert "confirm" in exc.value.message_dict and schema_exists("t_zeta")
    services.tenant_delete(actor="pytest", tenant=tenant, confirm="zeta")
    assert not schema_exists("t_zeta")
    assert not Tenant.objects.filter(slug="zeta").exists()
    assert not Domain.objects.filter(domain="zeta.localhost").exists()


@pytest.mark.django_db
def test_services_work_from_inside_a_tenant_schema(alpha):
    """A caller left on a tenant's schema (a task, a shell) still writes to the public schema."""
    connection.set_tenant(alpha.tenant)
    tenant, _ = services.tenant_create(actor="pytest", slug="eta", name="Eta")
    services.tenant_suspend(actor="pytest", tenant=tenant)
    assert connection.schema_name == alpha.schema_name  # the caller's schema is restored
    connection.set_schema_to_public()
    assert Tenant.objects.get(slug="eta").status == Tenant.Status.SUSPENDED
