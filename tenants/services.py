"""Tenant lifecycle: provision, suspend, reactivate, delete. Each call names its actor and
writes a TenantEvent; each is one transaction, so a failure leaves nothing behind."""
import functools
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists

from .cloning import clone_schema
from .models import Domain, Tenant, TenantEvent
from .validators import schema_name_for, validate_domain, validate_slug


class TemplateMissing(RuntimeError):
    pass


def platform_action(func):
    """Run a platform write in the public schema (where tenant rows live), whatever schema the
    caller's connection is on, and in one transaction."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with schema_context(get_public_schema_name()), transaction.atomic():
            return func(*args, **kwargs)

    return wrapper


def _actor_label(actor):
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return actor.get_username()


def _audit(*, actor, slug, action, **detail):
    TenantEvent.objects.create(
        tenant_slug=slug,
        action=action,
        actor=None if actor is None or isinstance(actor, str) else actor,
        actor_label=_actor_label(actor),
        detail=detail,
    )


def default_domain(slug):
    return f"{slug}.{settings.KAM_BASE_DOMAIN}"


def validate_new_tenant(*, slug, name, domain, admin_email):
    validate_slug(slug)
    validate_domain(domain)
    errors = {}
    if not name or not name.strip():
        errors["name"] = _("A name is required.")
    if Tenant.objects.filter(slug=slug).exists() or schema_exists(schema_name_for(slug), case_sensitive=False):
        errors["slug"] = _("The slug “%(slug)s” is already taken.") % {"slug": slug}
    if Domain.objects.filter(domain=domain).exists():
        errors["domain"] = _("The domain “%(domain)s” is already in use.") % {"domain": domain}
    if admin_email is not None and "@" not in admin_email:
        errors["admin_email"] = _("Enter a valid email address.")
    if errors:
        raise ValidationError(errors)


def clone_template(schema_name):
    """Create ``schema_name`` as a copy of the migrated template schema (tables, data such
    as content types and permissions, and the migration records)."""
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        raise TemplateMissing(f"The template schema {template!r} does not exist: run `kam migrate` first.")
    clone_schema(template, schema_name)


def create_tenant_admin(*, email, password):
    User = get_user_model()
    # The email is the login name: what an operator types is what they were sent.
    return User.objects.create_superuser(username=email, email=email, password=password)


@platform_action
def tenant_create(*, actor, slug, name, admin_email=None, admin_password=None, domain=None):
    """Provision a tenant: row, schema cloned from the template, primary domain and (optionally)
    a tenant admin. All or nothing: PostgreSQL DDL is transactional, so a failure at any step
    rolls back the schema too. Returns ``(tenant, admin_password)``."""
    slug = (slug or "").strip().lower()
    domain = (domain or default_domain(slug)).strip().lower()
    validate_new_tenant(slug=slug, name=name, domain=domain, admin_email=admin_email)

    tenant = Tenant(slug=slug, name=name.strip(), schema_name=schema_name_for(slug))
    tenant.save()
    clone_template(tenant.schema_name)
    Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
    if admin_email:
        admin_password = admin_password or secrets.token_urlsafe(12)
        with schema_context(tenant.schema_name):
            create_tenant_admin(email=admin_email, password=admin_password)
    _audit(actor=actor, slug=slug, action=TenantEvent.Action.CREATED, domain=domain, admin_email=admin_email)
    return tenant, admin_password


def tenant_get(slug):
    try:
        return Tenant.objects.exclude(schema_name="public").get(slug=slug)
    except Tenant.DoesNotExist:
        raise ValidationError({"slug": _("No tenant “%(slug)s”.") % {"slug": slug}}) from None


@platform_action
def tenant_suspend(*, actor, tenant):
    """Block every user of ``tenant`` from the next request on; no data is touched."""
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspended_at = timezone.now()
    tenant.save(update_fields=["status", "suspended_at"])
    _audit(actor=actor, slug=tenant.slug, action=TenantEvent.Action.SUSPENDED)
    return tenant


@platform_action
def tenant_reactivate(*, actor, tenant):
    tenant.status = Tenant.Status.ACTIVE
    tenant.suspended_at = None
    tenant.save(update_fields=["status", "suspended_at"])
    _audit(actor=actor, slug=tenant.slug, action=TenantEvent.Action.REACTIVATED)
    return tenant


@platform_action
def tenant_delete(*, actor, tenant, confirm):
    """Drop the tenant's schema, domains and row. ``confirm`` must repeat the slug."""
    if confirm != tenant.slug:
        raise ValidationError({"confirm": _("Type the tenant's slug “%(slug)s” to confirm deletion.") % {"slug": tenant.slug}})
    slug, schema = tenant.slug, tenant.schema_name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    tenant.domains.all().delete()
    # Row delete through the queryset: TenantMixin.delete() would re-check auto_drop_schema.
    Tenant.objects.filter(pk=tenant.pk).delete()
    _audit(actor=actor, slug=slug, action=TenantEvent.Action.DELETED, schema=schema)
