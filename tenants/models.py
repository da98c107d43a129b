"""Tenants (operators) and their host names, kept in the public schema."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)

    # Provisioning is explicit and atomic (tenants.services.tenant_create), never a side effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["slug"]

    def __str__(self):
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self):
        return self.status == self.Status.ACTIVE


class Domain(DomainMixin):
    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")


class TenantEvent(models.Model):
    """Audit trail of platform actions on tenants (who did what to which tenant, when)."""

    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        SUSPENDED = "suspended", _("Suspended")
        REACTIVATED = "reactivated", _("Reactivated")
        DELETED = "deleted", _("Deleted")

    tenant_slug = models.CharField(max_length=40, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200, help_text=_("who acted, kept when the user is gone"))
    at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("tenant event")
        verbose_name_plural = _("tenant events")
