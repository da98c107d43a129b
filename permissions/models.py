"""Roles, memberships, module toggles and object grants (R2).

A membership is user x unit x role: the role's permissions on the unit's whole subtree.
Object grants (django-guardian, direct foreign-key tables) add access to single objects
beyond the tree.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

from org_hierarchy.models import OrgLevel, OrgUnit


class Role(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    permissions = ArrayField(models.CharField(max_length=64), default=list, blank=True, verbose_name=_("permissions"))
    is_builtin = models.BooleanField(_("built in"), default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("role")
        verbose_name_plural = _("roles")

    def __str__(self):
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    unit = models.ForeignKey(OrgUnit, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "unit", "role"], name="unique_membership")]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")


class ModuleToggle(models.Model):
    """A module switched off (or back on) for every unit at a level."""

    module = models.CharField(_("module"), max_length=40)
    level = models.ForeignKey(OrgLevel, on_delete=models.CASCADE, related_name="module_toggles")
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["module", "level"], name="unique_module_toggle")]


class PermissionAuditEntry(models.Model):
    """Who changed roles, memberships, grants or module toggles, and how."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=40)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class OrgUnitUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian grants on org units (fast: no generic cast of every primary key)."""

    content_object = models.ForeignKey(OrgUnit, on_delete=models.CASCADE)
