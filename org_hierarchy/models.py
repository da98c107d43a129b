"""Levels and the org tree of a tenant (R1, R2).

The tree is a materialised path (django-treebeard MP) plus an explicit parent FK: "all units
under X" is one index-backed ``path LIKE 'X%'`` lookup, and other records reference a unit by
id only, so moving a subtree never touches them. Every unit keeps the history of its parent
with validity dates, so reports can use the structure as of a date.
"""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from treebeard.mp_tree import MP_Node


class OrgLevel(models.Model):
    """A level of the tree (HQ, province, city, district, ...): configuration, not code."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True, help_text=_("0 for the top level; deeper levels have higher ranks"))

    class Meta:
        ordering = ["rank"]
        verbose_name = _("org level")
        verbose_name_plural = _("org levels")

    def __str__(self):
        return self.name


class OrgUnit(MP_Node):
    # treebeard's unique ``path`` already gets a varchar_pattern_ops index from Django on
    # PostgreSQL, which is what makes ``path LIKE 'X%'`` an index range scan.
    code = models.CharField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    level = models.ForeignKey(OrgLevel, on_delete=models.PROTECT, related_name="units", verbose_name=_("level"))
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("parent")
    )
    is_active = models.BooleanField(_("active"), default=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    node_order_by = ["code"]

    class Meta:
        verbose_name = _("org unit")
        verbose_name_plural = _("org units")

    def __str__(self):
        return f"{self.name} ({self.code})"


class OrgUnitParentPeriod(models.Model):
    """Which parent a unit had from ``valid_from`` until ``valid_to`` (open-ended when null)."""

    unit = models.ForeignKey(OrgUnit, on_delete=models.CASCADE, related_name="parent_periods")
    parent = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["unit", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["unit"], condition=models.Q(valid_to__isnull=True), name="one_open_parent_period"),
        ]


class OrgAuditEntry(models.Model):
    """Who changed the structure, how and when (reorganisations are audited services)."""

    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        RENAMED = "renamed", _("Renamed")
        MOVED = "moved", _("Moved")
        MERGED = "merged", _("Merged")
        CLOSED = "closed", _("Closed")
        IMPORTED = "imported", _("Imported")
        LEVEL_CHANGED = "level_changed", _("Levels changed")

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=Action.choices)
    unit = models.ForeignKey(OrgUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    unit_code = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("org audit entry")
        verbose_name_plural = _("org audit entries")
