"""Levels and reorganisations of the org tree (R1, R2).

Every service names its ``actor`` (a tenant user, whose permissions are checked, or a string
such as ``"cli:root"`` for trusted callers), runs in one transaction, writes an OrgAuditEntry
and makes cached scopes stale on commit. Tree writes take a per-tenant advisory lock, so two
reorganisations never interleave their path rewrites; readers are never blocked.

Rules: a unit's level ranks below its parent's (HQ -> city directly is allowed, a province under
a city is not); codes are unique for ever (closed units keep theirs); closed units cannot be
changed, moved into or merged; every create and move closes the unit's open parent period and
opens a new one, so the structure can be read as of any date. Bad input raises
ValidationError({field: [message]}) and changes nothing; refusals raise PermissionDenied or
Http404 (an actor who may not even see the unit).
"""
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext

from kam import history

from . import ownership
from .models import OrgAuditEntry, OrgLevel, OrgUnit, OrgUnitParentPeriod

Action = OrgAuditEntry.Action


# --- Actors, permissions, audit -----------------------------------------------------------

def is_user(actor):
    return actor is not None and not isinstance(actor, str)


def actor_label(actor):
    if actor is None:
        return "system"
    return actor if isinstance(actor, str) else actor.get_username()


def _require(actor, code, unit):
    if is_user(actor):
        from permissions.selectors import require

        require(actor, code, unit)


def _require_top(actor):
    """Roots have no parent to hold "org_unit.add" at: only tenant admins add or move them."""
    if is_user(actor) and not (actor.is_active and actor.is_superuser):
        raise PermissionDenied(_("Only a tenant admin can add or move units at the top of the tree."))


def _require_tenant_wide(actor):
    """Levels shape the whole tree: their actor must hold "org_unit.change" at every root."""
    if is_user(actor):
        from permissions.selectors import holds_tenant_wide

        if not holds_tenant_wide(actor, "org_unit.change"):
            raise PermissionDenied(_("Changing levels needs the right to change org units across the whole tenant."))


def ref(unit):
    return None if unit is None else {"id": unit.pk, "code": unit.code, "name": unit.name}


def audit(actor, action, unit=None, **detail):
    return OrgAuditEntry.objects.create(
        actor=actor if is_user(actor) else None,
        actor_label=actor_label(actor),
        action=action,
        unit=unit,
        unit_code=unit.code if unit is not None else "",
        detail=detail,
    )


def lock_tree():
    """Serialise tree writes within this tenant until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{connection.schema_name}:org_tree"])


def scopes_changed():
    from permissions.scope import invalidate_scopes

    invalidate_scopes()  # bumps the generation now and again on commit


# --- Validation ---------------------------------------------------------------------------

def resolve_level(level, field="level"):
    """An OrgLevel from an instance, a primary key or a level code."""
    if isinstance(level, OrgLevel):
        return level
    found = None
    if isinstance(level, int):
        found = OrgLevel.objects.filter(pk=level).first()
    elif isinstance(level, str) and level.strip():
        found = OrgLevel.objects.filter(code=level.strip()).first()
    if found is None:
        raise ValidationError({field: [_("Unknown level “%(level)s”.") % {"level": level}]})
    return found


def clean_text(value, field, max_length):
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: [_("This field is required.")]})
    if len(value) > max_length:
        raise ValidationError({field: [_("At most %(max)d characters.") % {"max": max_length}]})
    return value


def check_open(unit, field):
    if not unit.is_active:
        raise ValidationError({field: [_("%(unit)s is closed.") % {"unit": unit}]})


def check_placement(level, parent, field):
    """A unit at ``level`` may sit under ``parent`` (None: at the top)."""
    if parent is None:
        return
    check_open(parent, field)
    if level.rank <= parent.level.rank:
        raise ValidationError({field: [
            _("A unit at level “%(level)s” cannot be placed under %(parent)s (level “%(parent_level)s”): "
              "levels must get deeper down the tree.")
            % {"level": level.name, "parent": parent, "parent_level": parent.level.name}
        ]})


def open_period(unit, parent, now, *, new=False):
    if not new:
        OrgUnitParentPeriod.objects.filter(unit=unit, valid_to__isnull=True).update(valid_to=now)
    OrgUnitParentPeriod.objects.create(unit=unit, parent=parent, valid_from=now)


# --- Tree writes without permission checks (the services and the importer share them) ------

def create_unit(*, actor, code, name, level, parent, now, **detail):
    code = clean_text(code, "code", OrgUnit._meta.get_field("code").max_length)
    name = clean_text(name, "name", OrgUnit._meta.get_field("name").max_length)
    level = resolve_level(level)
    if OrgUnit.objects.filter(code=code).exists():
        raise ValidationError({"code": [_("The code “%(code)s” is already used.") % {"code": code}]})
    check_placement(level, parent, "parent")
    unit = OrgUnit(code=code, name=name, level=level, parent=parent)
    if parent is None:
        OrgUnit.objects.add_root(instance=unit)
    else:
        OrgUnit.objects.add_child(parent, instance=unit)
    open_period(unit, parent, now, new=True)
    audit(actor, Action.CREATED, unit, parent=ref(parent), level=level.code, name=name, **detail)
    return unit


def move_unit(*, actor, unit, new_parent, now, **detail):
    """Move ``unit`` and its subtree; returns False when it is already there."""
    check_open(unit, "unit")
    if new_parent is not None and new_parent.path.startswith(unit.path):
        message = _("A unit cannot be moved under itself.") if new_parent.pk == unit.pk else _(
            "%(parent)s is inside %(unit)s: a unit cannot be moved under its own descendant."
        ) % {"parent": new_parent, "unit": unit}
        raise ValidationError({"new_parent": [message]})
    check_placement(unit.level, new_parent, "new_parent")
    if unit.parent_id == (new_parent.pk if new_parent else None):
        return False
    old_parent = unit.parent
    if new_parent is None:
        OrgUnit.objects.move(unit, OrgUnit.objects.get_first_root_node(), "sorted-sibling")
    else:
        OrgUnit.objects.move(unit, new_parent, "sorted-child")
    unit.refresh_from_db(fields=["path", "depth", "numchild"])
    unit.parent = new_parent
    unit.save(update_fields=["parent"])
    open_period(unit, new_parent, now)
    moved = OrgUnit.objects.filter(path__startswith=unit.path).count()
    audit(actor, Action.MOVED, unit, old_parent=ref(old_parent), new_parent=ref(new_parent), units_moved=moved, **detail)
    return True


def rename_unit(*, actor, unit, name, **detail):
    """Returns False when the name is unchanged."""
    check_open(unit, "unit")
    name = clean_text(name, "name", OrgUnit._meta.get_field("name").max_length)
    if name == unit.name:
        return False
    old_name, unit.name = unit.name, name
    unit.save(update_fields=["name"])
    audit(actor, Action.RENAMED, unit, old_name=old_name, new_name=name, **detail)
    return True


def _close(unit, now):
    unit.is_active = False
    unit.closed_at = now
    unit.save(update_fields=["is_active", "closed_at"])
    OrgUnitParentPeriod.objects.filter(unit=unit, valid_to__isnull=True).update(valid_to=now)


def _fresh(*units):
    for unit in units:
        if unit is not None:
            unit.refresh_from_db()


# --- Units ---------------------------------------------------------------------------------

@transaction.atomic
def unit_create(*, actor, code, name, level, parent=None):
    """Add a unit at ``level`` under ``parent`` (None: a new root). Needs "org_unit.add" at the
    parent; roots need a tenant admin. ``level`` is an OrgLevel, its id or its code."""
    if parent is None:
        _require_top(actor)
    else:
        _require(actor, "org_unit.add", parent)
    lock_tree()
    _fresh(parent)
    unit = create_unit(actor=actor, code=code, name=name, level=level, parent=parent, now=timezone.now())
    scopes_changed()
    return unit


@transaction.atomic
def unit_rename(*, actor, unit, name):
    """Needs "org_unit.change" on the unit. Renaming to the same name changes nothing."""
    _require(actor, "org_unit.change", unit)
    lock_tree()
    _fresh(unit)
    if rename_unit(actor=actor, unit=unit, name=name):
        scopes_changed()
    return unit


@transaction.atomic
def unit_move(*, actor, unit, new_parent):
    """Move a unit with its whole subtree under ``new_parent`` (None: to the top). Needs
    "org_unit.change" on the unit and "org_unit.add" at the new parent. Records keep their
    unit ids, so nothing but the moved units' paths changes. Moving to the current parent is a
    no-op without an audit entry."""
    _require(actor, "org_unit.change", unit)
    if new_parent is None:
        _require_top(actor)
    else:
        _require(actor, "org_unit.add", new_parent)
    lock_tree()
    _fresh(unit, new_parent)
    if move_unit(actor=actor, unit=unit, new_parent=new_parent, now=timezone.now()):
        scopes_changed()
    return unit


def _move_memberships(source, survivor):
    from permissions.models import Membership

    held = set(Membership.objects.filter(unit=survivor).values_list("user_id", "role_id"))
    rows = Membership.objects.filter(unit=source)
    duplicates = [pk for pk, user, role in rows.values_list("pk", "user_id", "role_id") if (user, role) in held]
    dropped = Membership.objects.filter(pk__in=duplicates).delete()[0]
    return rows.update(unit=survivor), dropped


@transaction.atomic
def unit_merge(*, actor, source, survivor):
    """Fold ``source`` into ``survivor``: its open child units move under the survivor, its
    memberships, object grants and owned records move to the survivor (a membership or grant the
    survivor already has is dropped as a duplicate), and the source is closed, keeping its
    history. Needs "org_unit.change" on both and "org_unit.delete" on the source.

    The survivor may be an ancestor of the source (folding a city into its province) but not
    the source itself or one of its descendants, which would end up under itself."""
    _require(actor, "org_unit.change", source)
    _require(actor, "org_unit.delete", source)
    _require(actor, "org_unit.change", survivor)
    lock_tree()
    _fresh(source, survivor)
    check_open(source, "source")
    check_open(survivor, "survivor")
    if survivor.pk == source.pk:
        raise ValidationError({"survivor": [_("A unit cannot be merged into itself.")]})
    if survivor.path.startswith(source.path):
        raise ValidationError({"survivor": [
            _("%(survivor)s is inside %(source)s: merge it the other way round, or move it out first.")
            % {"survivor": survivor, "source": source}
        ]})
    now = timezone.now()
    children = list(source.children.filter(is_active=True).select_related("level").order_by("code"))
    for child in children:
        check_placement(child.level, survivor, "survivor")
    for child in children:
        child.refresh_from_db()  # earlier moves may have shifted its path
        survivor.refresh_from_db()
        move_unit(actor=actor, unit=child, new_parent=survivor, now=now, merge_of=ref(source))
    memberships_moved, memberships_dropped = _move_memberships(source, survivor)
    grants_moved, grants_dropped = ownership.move_grants(source, survivor)
    with history.acting(actor, unit=survivor, via="org.merge"):  # customers' history names the merge
        records = ownership.move_records(source, survivor)
    records.pop("permissions.Membership", None)  # counted above
    source.refresh_from_db()
    _close(source, now)
    audit(
        actor, Action.MERGED, source,
        source=ref(source), survivor=ref(survivor), merged_ids=[source.pk, survivor.pk],
        children_moved=[child.code for child in children],
        memberships_moved=memberships_moved, memberships_dropped=memberships_dropped,
        grants_moved=grants_moved, grants_dropped=grants_dropped, records_moved=records,
    )
    scopes_changed()
    survivor.refresh_from_db()
    return survivor


@transaction.atomic
def unit_close(*, actor, unit):
    """Close a unit that owns nothing any more: no open child units and no record pointing at
    it (memberships included). Needs "org_unit.delete". The unit keeps its code, history and
    place in the tree; its object grants stay with it."""
    _require(actor, "org_unit.delete", unit)
    lock_tree()
    _fresh(unit)
    check_open(unit, "unit")
    blocking = [ownership.label(model, count) for model, count in ownership.references(unit)]
    children = unit.children.filter(is_active=True).count()
    if children:
        blocking.append(ownership.label(OrgUnit, children))
    if blocking:
        raise ValidationError({"unit": [
            _("%(unit)s still has %(what)s: move, reassign or close them first.") % {"unit": unit, "what": ", ".join(blocking)}
        ]})
    _close(unit, timezone.now())
    audit(actor, Action.CLOSED, unit, name=unit.name, parent=ref(unit.parent))
    scopes_changed()
    return unit


# --- Levels ---------------------------------------------------------------------------------

def _validate_level(level, *, exclude=()):
    try:
        level.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from None


def _check_ranks():
    """Every parent/child pair still has the parent on a higher level."""
    broken = OrgUnit.objects.filter(parent__isnull=False, level__rank__lte=F("parent__level__rank"))
    first = broken.select_related("parent").first()
    if first is not None:
        raise ValidationError({"rank": [
            _("With this rank %(unit)s would no longer be below its parent %(parent)s.")
            % {"unit": first, "parent": first.parent}
        ]})


def create_level(*, actor, code, name, rank):
    level = OrgLevel(code=(code or "").strip(), name=(name or "").strip(), rank=rank)
    _validate_level(level)
    level.save()
    audit(actor, Action.LEVEL_CHANGED, None, change="created", level=level.code, name=level.name, rank=level.rank)
    return level


@transaction.atomic
def level_create(*, actor, code, name, rank):
    """Add a level (any depth: rank 0 is the top). Needs a tenant-wide "org_unit.change"."""
    _require_tenant_wide(actor)
    lock_tree()
    level = create_level(actor=actor, code=code, name=name, rank=rank)
    scopes_changed()
    return level


@transaction.atomic
def level_update(*, actor, level, name=None, rank=None):
    """Rename or re-rank a level; a new rank must keep every unit below its parent."""
    _require_tenant_wide(actor)
    lock_tree()
    level.refresh_from_db()
    before = {"name": level.name, "rank": level.rank}
    if name is not None:
        level.name = name.strip()
    if rank is not None:
        level.rank = rank
    _validate_level(level)
    after = {"name": level.name, "rank": level.rank}
    if after == before:
        return level
    level.save(update_fields=["name", "rank"])
    if rank is not None:
        _check_ranks()
    audit(actor, Action.LEVEL_CHANGED, None, change="updated", level=level.code, old=before, new=after)
    scopes_changed()
    return level


@transaction.atomic
def level_delete(*, actor, level):
    """Delete a level no unit uses (its module toggles go with it)."""
    _require_tenant_wide(actor)
    lock_tree()
    used = level.units.count()
    if used:
        message = ngettext(
            "%(count)d unit is at level “%(level)s”; it can only be deleted when none is.",
            "%(count)d units are at level “%(level)s”; it can only be deleted when none is.",
            used,
        )
        raise ValidationError({"level": [message % {"count": used, "level": level.name}]})
    detail = {"change": "deleted", "level": level.code, "name": level.name, "rank": level.rank}
    level.delete()
    audit(actor, Action.LEVEL_CHANGED, None, **detail)
    scopes_changed()
