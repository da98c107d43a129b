"""Roles, memberships, users, object grants and module toggles: the write use-cases of R2.

Every service takes ``actor=``: a tenant user, whose permissions are checked, or a string such
as "cli:root" or "system" for trusted callers, which skip the checks. Each runs in one
transaction, writes a PermissionAuditEntry and makes cached scopes stale on commit.

Delegation rules, for user actors:
- an actor acts only on units inside their scope for the matching permission (404 for a unit or
  user they may not even see, 403 for one they see but may not change);
- an actor never grants a role or an object grant containing a permission they do not hold at
  that unit or object, and never removes one either (nobody demotes someone above them);
- an actor never adds or removes their own memberships or grants (no self-promotion);
- role definitions and module toggles are tenant-wide: changing them needs the permission at
  every root unit, and a role never gets a permission its editor lacks tenant-wide.
"""
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.http import Http404
from django.utils.translation import gettext as _

from org_hierarchy.models import OrgLevel

from . import registry
from .catalog import ALL_PERMISSIONS, MODULES, RESOURCES
from .models import Membership, ModuleToggle, PermissionAuditEntry, Role
from .scope import invalidate_scopes, resolve_scope
from .selectors import can, holds_tenant_wide, is_active_user, module_enabled, require, user_list  # noqa: F401

__all__ = [
    "role_create", "role_update", "role_delete", "membership_add", "membership_remove", "user_create",
    "user_update", "user_deactivate", "user_activate", "grant_add", "grant_remove", "module_set", "module_enabled",
]


# --- Actors and audit ---------------------------------------------------------------------

def is_trusted(actor):
    return isinstance(actor, str)


def actor_label(actor):
    return actor if is_trusted(actor) else actor.get_username()


def _audit(actor, event, **detail):
    PermissionAuditEntry.objects.create(
        actor=None if is_trusted(actor) else actor, actor_label=actor_label(actor), action=event, detail=detail
    )


def _user_actor(actor):
    if not is_trusted(actor) and not is_active_user(actor):
        raise PermissionDenied(_("Your account cannot make changes."))


def _not_self(actor, user):
    if not is_trusted(actor) and actor.pk == user.pk:
        raise PermissionDenied(_("You cannot change your own memberships or grants."))


def _require(actor, code, obj):
    if not is_trusted(actor):
        require(actor, code, obj)


def _holds_all(actor, codes, unit_id):
    """Refuse unless ``actor`` holds every one of ``codes`` at the unit (no granting beyond oneself)."""
    if is_trusted(actor) or actor.is_superuser:
        return
    scope = resolve_scope(actor)
    missing = sorted(code for code in codes if not scope.allows(code, unit_id))
    if missing:
        raise PermissionDenied(
            _("You do not hold these permissions there yourself: %(codes)s") % {"codes": ", ".join(missing)}
        )


def _tenant_wide(actor, code):
    if not is_trusted(actor) and not holds_tenant_wide(actor, code):
        raise PermissionDenied(_("Only administrators of the whole organisation can do this."))


def _open_unit(unit):
    if not unit.is_active:
        raise ValidationError({"unit": [_("The unit %(code)s is closed.") % {"code": unit.code}]})


# --- Roles ----------------------------------------------------------------------------------

def _clean_permissions(permissions):
    unknown = sorted({code for code in permissions if code not in ALL_PERMISSIONS})
    if unknown:
        raise ValidationError({"permissions": [_("Unknown permissions: %(codes)s") % {"codes": ", ".join(unknown)}]})
    wanted = set(permissions)
    return [code for code in ALL_PERMISSIONS if code in wanted]  # catalogue order, no duplicates


def _clean_name(name):
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("A name is required.")]})
    return name


def _tenant_wide_codes(actor, codes):
    if is_trusted(actor) or actor.is_superuser:
        return
    lacking = sorted(code for code in codes if not holds_tenant_wide(actor, code))
    if lacking:
        raise PermissionDenied(
            _("You cannot put permissions you do not hold everywhere into a role: %(codes)s") % {"codes": ", ".join(lacking)}
        )


@transaction.atomic
def role_create(*, actor, code, name, permissions=(), description=""):
    """A new role; needs "role.add" tenant-wide and every permission of it held tenant-wide."""
    _user_actor(actor)
    _tenant_wide(actor, "role.add")
    code = (code or "").strip()
    try:
        validate_slug(code)
    except ValidationError:
        raise ValidationError({"code": [_("Use letters, digits, hyphens and underscores.")]}) from None
    if Role.objects.filter(code=code).exists():
        raise ValidationError({"code": [_("The role code “%(code)s” is already taken.") % {"code": code}]})
    name = _clean_name(name)
    permissions = _clean_permissions(permissions)
    _tenant_wide_codes(actor, permissions)
    role = Role.objects.create(code=code, name=name, description=description or "", permissions=permissions)
    _audit(actor, "role_created", role=code, permissions=permissions)
    return role


@transaction.atomic
def role_update(*, actor, role, name=None, description=None, permissions=None):
    """Rename a role or change its permission set; needs "role.change" tenant-wide, and the new
    set may only add permissions the actor holds tenant-wide."""
    _user_actor(actor)
    _tenant_wide(actor, "role.change")
    role = Role.objects.select_for_update().get(pk=role.pk)
    changed = {}
    if name is not None and name.strip() != role.name:
        role.name = changed["name"] = _clean_name(name)
    if description is not None and description != role.description:
        role.description = changed["description"] = description
    if permissions is not None:
        permissions = _clean_permissions(permissions)
        added = sorted(set(permissions) - set(role.permissions))
        _tenant_wide_codes(actor, added)
        if permissions != list(role.permissions):
            changed["added"] = added
            changed["removed"] = sorted(set(role.permissions) - set(permissions))
            role.permissions = permissions
    if changed:
        fields = [f for f in ("name", "description") if f in changed] + (["permissions"] if "added" in changed else [])
        role.save(update_fields=fields)
        _audit(actor, "role_changed", role=role.code, **changed)
        invalidate_scopes()
    return role


@transaction.atomic
def role_delete(*, actor, role):
    """Delete a role nobody holds; needs "role.delete" tenant-wide."""
    _user_actor(actor)
    _tenant_wide(actor, "role.delete")
    in_use = Membership.objects.filter(role=role).count()
    if in_use:
        raise ValidationError(
            {"role": [_("The role “%(name)s” is still held by %(count)d memberships.") % {"name": role.name, "count": in_use}]}
        )
    code = role.code
    role.delete()
    _audit(actor, "role_deleted", role=code)
    invalidate_scopes()


# --- Memberships ----------------------------------------------------------------------------

def _visible_target(actor, user):
    """Refuse (404) a target user the actor may not see."""
    if is_trusted(actor) or actor.is_superuser:
        return
    if not user_list(user=actor).filter(pk=user.pk).exists():
        raise Http404


def _create_membership(actor, user, unit, role):
    _open_unit(unit)
    if not user.is_active:
        raise ValidationError({"user": [_("The user is deactivated.")]})
    _holds_all(actor, role.permissions, unit.pk)
    if Membership.objects.filter(user=user, unit=unit, role=role).exists():
        raise ValidationError({"role": [_("The user already holds this role at this unit.")]})
    membership = Membership.objects.create(
        user=user, unit=unit, role=role, created_by=None if is_trusted(actor) else actor
    )
    _audit(actor, "membership_added", user=user.get_username(), unit=unit.code, role=role.code)
    invalidate_scopes()
    return membership


@transaction.atomic
def membership_add(*, actor, user, unit, role):
    """Give ``user`` ``role`` at ``unit`` (and so on its subtree). The actor needs
    "membership.add" at the unit, every permission of the role there, and to see the user."""
    _user_actor(actor)
    _not_self(actor, user)
    _require(actor, "membership.add", unit)
    _visible_target(actor, user)
    return _create_membership(actor, user, unit, role)


@transaction.atomic
def membership_remove(*, actor, membership):
    """Remove a membership; the actor needs "membership.delete" at its unit and every permission
    of its role there."""
    _user_actor(actor)
    _not_self(actor, membership.user)
    _require(actor, "membership.delete", membership.unit)
    _holds_all(actor, membership.role.permissions, membership.unit_id)
    detail = {"user": membership.user.get_username(), "unit": membership.unit.code, "role": membership.role.code}
    membership.delete()
    _audit(actor, "membership_removed", **detail)
    invalidate_scopes()


# --- Users ----------------------------------------------------------------------------------

def _clean_email(email, *, exclude_pk=None):
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": [_("Enter a valid email address.")]}) from None
    User = get_user_model()
    taken = User.objects.filter(username__iexact=email) | User.objects.filter(email__iexact=email)
    if taken.exclude(pk=exclude_pk).exists():
        raise ValidationError({"email": [_("A user with this email already exists.")]})
    return email


def _manageable(actor, user, code):
    """Refuse unless ``actor`` holds ``code`` at every unit where ``user`` holds a membership:
    404 when they may not see the user at all, 403 when they may see but not manage them."""
    if is_trusted(actor) or actor.is_superuser:
        return
    _visible_target(actor, user)
    scope = resolve_scope(actor)
    units = set(Membership.objects.filter(user=user).values_list("unit_id", flat=True))
    if user.is_superuser or not units or not all(scope.allows(code, unit) for unit in units):
        raise PermissionDenied(_("This user also works outside the units you manage."))


@transaction.atomic
def user_create(*, actor, email, unit, role, first_name="", last_name="", password=None):
    """A new user who logs in with ``email``, holding ``role`` at ``unit``. The actor needs
    "user.add" and "membership.add" at the unit and every permission of the role there.
    Returns ``(user, password)``; the password is generated when not given."""
    _user_actor(actor)
    _require(actor, "user.add", unit)
    _require(actor, "membership.add", unit)
    _open_unit(unit)
    _holds_all(actor, role.permissions, unit.pk)
    email = _clean_email(email)
    User = get_user_model()
    user = User(username=email, email=email, first_name=(first_name or "").strip(), last_name=(last_name or "").strip())
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
    else:
        password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save()
    _audit(actor, "user_created", user=email)
    _create_membership(actor, user, unit, role)
    return user, password


@transaction.atomic
def user_update(*, actor, user, first_name=None, last_name=None, email=None):
    """Change a user's name or email (the email is the login name). The actor needs "user.change"
    at every unit the user holds a membership at."""
    _user_actor(actor)
    _manageable(actor, user, "user.change")
    changed = {}
    if first_name is not None and first_name.strip() != user.first_name:
        user.first_name = changed["first_name"] = first_name.strip()
    if last_name is not None and last_name.strip() != user.last_name:
        user.last_name = changed["last_name"] = last_name.strip()
    if email is not None and email.strip().lower() != user.email:
        user.email = user.username = changed["email"] = _clean_email(email, exclude_pk=user.pk)
    if changed:
        user.save(update_fields=[f for f in ("first_name", "last_name", "email") if f in changed]
                  + (["username"] if "email" in changed else []))
        _audit(actor, "user_changed", user=user.get_username(), **changed)
    return user


def _set_active(actor, user, active, code, action):
    _user_actor(actor)
    _not_self(actor, user)
    _manageable(actor, user, code)
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
        _audit(actor, action, user=user.get_username())
        invalidate_scopes()
    return user


@transaction.atomic
def user_deactivate(*, actor, user):
    """Stop ``user`` from logging in (sessions and tokens stop working); nothing is deleted.
    The actor needs "user.delete" at every unit the user holds a membership at."""
    return _set_active(actor, user, False, "user.delete", "user_deactivated")


@transaction.atomic
def user_activate(*, actor, user):
    return _set_active(actor, user, True, "user.change", "user_activated")


# --- Object grants --------------------------------------------------------------------------

def _grant_permission(reg, action):
    codename = reg.codename(action)
    actions = RESOURCES.get(reg.resource, (None, ()))[1]
    permission = None
    if codename is not None and action in actions:
        ct = ContentType.objects.get_for_model(reg.model)
        permission = Permission.objects.filter(content_type=ct, codename=codename).first()
    if permission is None:
        raise ValidationError({"action": [_("“%(action)s” cannot be granted on this object.") % {"action": action}]})
    return permission


@transaction.atomic
def grant_add(*, actor, user, obj, action):
    """Give ``user`` ``action`` on ``obj`` alone (an org unit grant does not cover its subtree).
    The actor needs "object_grant.add" at the object's unit and ``action`` on the object
    themselves. Idempotent."""
    _user_actor(actor)
    reg = registry.get(obj)
    permission = _grant_permission(reg, action)
    _not_self(actor, user)
    _require(actor, "object_grant.add", obj)
    if not is_trusted(actor) and not can(actor, f"{reg.resource}.{action}", obj):
        raise PermissionDenied(_("You cannot grant what you may not do yourself."))
    if not user.is_active:
        raise ValidationError({"user": [_("The user is deactivated.")]})
    grant, created = reg.grant_model.objects.get_or_create(user=user, permission=permission, content_object=obj)
    if created:
        _audit(actor, "grant_added", user=user.get_username(), object=_label(reg, obj), action=action)
        invalidate_scopes()
    return grant


@transaction.atomic
def grant_remove(*, actor, user, obj, action):
    """Withdraw a grant; the actor needs "object_grant.delete" at the object's unit and ``action``
    on the object themselves. Removing a grant that does not exist changes nothing."""
    _user_actor(actor)
    reg = registry.get(obj)
    permission = _grant_permission(reg, action)
    _not_self(actor, user)
    _require(actor, "object_grant.delete", obj)
    if not is_trusted(actor) and not can(actor, f"{reg.resource}.{action}", obj):
        raise PermissionDenied(_("You cannot withdraw what you may not do yourself."))
    deleted, _counts = reg.grant_model.objects.filter(user=user, permission=permission, content_object=obj).delete()
    if deleted:
        _audit(actor, "grant_removed", user=user.get_username(), object=_label(reg, obj), action=action)
        invalidate_scopes()


def _label(reg, obj):
    return {"model": reg.model._meta.label_lower, "id": obj.pk, "name": str(obj)}


# --- Module toggles -------------------------------------------------------------------------

@transaction.atomic
def module_set(*, actor, module, level, enabled):
    """Switch ``module`` on or off for every unit at ``level``; needs "module.change" tenant-wide."""
    _user_actor(actor)
    _tenant_wide(actor, "module.change")
    if module not in MODULES:
        raise ValidationError({"module": [_("Unknown module “%(module)s”.") % {"module": module}]})
    if not isinstance(level, OrgLevel):
        raise ValidationError({"level": [_("Choose a level.")]})
    toggle, created = ModuleToggle.objects.get_or_create(module=module, level=level, defaults={"enabled": enabled})
    if created or toggle.enabled != enabled:
        toggle.enabled = enabled
        toggle.save(update_fields=["enabled"])
        _audit(actor, "module_set", module=module, level=level.code, enabled=enabled)
        invalidate_scopes()
    return toggle
