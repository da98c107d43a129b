"""Reads of the org tree. Lists are narrowed to what the user may see through
permissions.selectors (scope plus object grants); structure helpers take no user because they
serve code that has already checked access (scope resolution, reports)."""
from django.db.models import Q
from django.utils import timezone

from .models import OrgAuditEntry, OrgLevel, OrgUnit, OrgUnitParentPeriod


def level_list():
    """The tenant's levels, top first. Levels are tenant-wide configuration: every user of the
    tenant may read them (changing them needs org_unit.change on the whole tree)."""
    return OrgLevel.objects.order_by("rank")


def level_get(pk):
    """A level by id, or None (also for ids that are not numbers)."""
    return level_list().filter(pk=pk).first() if str(pk).isdigit() else None


def unit_list(*, user, as_of=None, include_closed=False):
    """The units ``user`` may view, in tree order (by path), with their levels.

    Open units only, unless ``include_closed``; with ``as_of`` (a datetime), the units that
    existed then, closed since or not (their parents then: ``parent_map_as_of``)."""
    from permissions.selectors import visible

    units = OrgUnit.objects.select_related("level").order_by("path")
    if as_of is not None:
        units = units.filter(pk__in=_periods_at(as_of).values("unit_id"))
    elif not include_closed:
        units = units.filter(is_active=True)
    return visible(user, units)


def unit_get(*, user, pk):
    """One unit by id, or Http404 when it does not exist or the user may not view it."""
    from permissions.selectors import get_visible_or_404

    return get_visible_or_404(user, OrgUnit.objects.select_related("level", "parent"), pk)


def subtree_ids(unit):
    """Ids of ``unit`` and every unit under it, closed ones included: one ``path LIKE 'P%'``
    lookup on the path index (``unit.path`` as loaded: refresh a unit you moved)."""
    return list(OrgUnit.objects.filter(path__startswith=unit.path).order_by().values_list("pk", flat=True))


def _periods_at(when):
    return OrgUnitParentPeriod.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=when), valid_from__lte=when)


def parent_map_as_of(when=None):
    """``{unit id: parent id or None}`` for every unit that existed at ``when`` (default: now),
    with the parent it had then. Periods are half-open: a move at T counts from T on."""
    return dict(_periods_at(when or timezone.now()).values_list("unit_id", "parent_id"))


def audit_list(*, user, unit=None):
    """Audit entries, newest first: those about units the user may view (tenant admins also
    see level changes and imports, which are about no single unit); with ``unit``, only those
    about it and the units under it."""
    from permissions.selectors import visible

    entries = OrgAuditEntry.objects.select_related("actor").order_by("-at", "-id")
    if unit is not None:
        entries = entries.filter(unit__path__startswith=unit.path)
    if not user.is_superuser:
        entries = entries.filter(unit__in=visible(user, OrgUnit.objects.all()).values("pk"))
    return entries
