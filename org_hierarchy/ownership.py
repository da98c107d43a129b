"""What points at an org unit: the records it owns and the object grants on it.

Found from the models themselves, not from a list: every model of a tenant app with a foreign
key to OrgUnit owns rows through it, so a model added later (customers, contracts, ...) is
covered by merge and close without touching this app. Excluded are the tree's own history
(OrgUnit.parent, parent periods, the audit trail), history snapshots (django-pghistory events
record who owned a row then, and must not be rewritten) and django-guardian grant tables, which
are access rights on the unit rather than things it owns (a merge carries them to the survivor).
"""
import functools

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from guardian.models.models import BaseObjectPermission
from pghistory.models import Event

from .models import OrgAuditEntry, OrgUnit, OrgUnitParentPeriod

TREE_HISTORY = (OrgUnit, OrgUnitParentPeriod, OrgAuditEntry)


def _tenant_models():
    for app in apps.get_app_configs():
        if app.name in settings.TENANT_APPS:
            # Auto-created many-to-many tables too: a record linked to several units is owned by each.
            yield from app.get_models(include_auto_created=True)


def _unit_keys(model):
    return [
        field.name
        for field in model._meta.concrete_fields
        if field.is_relation and (field.many_to_one or field.one_to_one) and field.related_model is OrgUnit
    ]


@functools.cache
def owning_relations():
    """``(model, field name)`` for every foreign key to OrgUnit that means "this unit owns the row"."""
    found = []
    for model in _tenant_models():
        if model._meta.proxy or not model._meta.managed or issubclass(model, TREE_HISTORY + (BaseObjectPermission, Event)):
            continue
        found += [(model, name) for name in _unit_keys(model)]
    return tuple(found)


@functools.cache
def grant_relations():
    """``(grant model, field name, key fields)`` for every guardian grant table on OrgUnit;
    the key fields (user or group, permission) are what makes a grant unique per unit."""
    found = []
    for model in _tenant_models():
        if issubclass(model, BaseObjectPermission) and not model._meta.abstract:
            for name in _unit_keys(model):
                holder = "user" if any(f.name == "user" for f in model._meta.concrete_fields) else "group"
                found.append((model, name, (f"{holder}_id", "permission_id")))
    return tuple(found)


def label(model, count):
    meta = model._meta
    return f"{count} {meta.verbose_name if count == 1 else meta.verbose_name_plural}"


def references(unit):
    """``[(model, count)]`` of the rows ``unit`` still owns (nothing listed when it owns none)."""
    counts = []
    for model, name in owning_relations():
        count = model._base_manager.filter(**{name: unit}).count()
        if count:
            counts.append((model, count))
    return counts


def move_grants(source, survivor):
    """Carry object grants from ``source`` to ``survivor``; a grant the survivor already has is
    dropped instead. Returns ``(moved, dropped)``."""
    moved = dropped = 0
    for model, name, keys in grant_relations():
        rows = model._base_manager.filter(**{name: source})
        held = set(model._base_manager.filter(**{name: survivor}).values_list(*keys))
        duplicates = [pk for pk, *key in rows.values_list("pk", *keys) if tuple(key) in held]
        dropped += model._base_manager.filter(pk__in=duplicates).delete()[0]
        moved += rows.update(**{name: survivor})
    return moved, dropped


def move_records(source, survivor):
    """Re-point every owned row of ``source`` at ``survivor``; returns ``{model label: count}``.

    A row that cannot move because the survivor already has its twin (a unique constraint)
    stops the merge with a ValidationError: owned records are never dropped silently."""
    moved = {}
    for model, name in owning_relations():
        try:
            with transaction.atomic():
                count = model._base_manager.filter(**{name: source}).update(**{name: survivor})
        except IntegrityError:
            raise ValidationError(
                {"survivor": [_("Some %(records)s of both units collide (a unique value is used by each); reassign them first.")
                              % {"records": model._meta.verbose_name_plural}]}
            ) from None
        if count:
            moved[model._meta.label] = moved.get(model._meta.label, 0) + count
    return moved
