"""The one read layer for permissions: what a user may see or do, for every registered model.

Access is the union of the user's scope (roles on subtrees, see scope.py) and their direct
object grants. Superusers (tenant admins) see and may do everything; inactive or anonymous
users nothing. Lookups by id answer 404 for what the user may not see, exactly as for a
missing id, so ids cannot be probed.
"""
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Lookup, Q
from django.http import Http404


from . import registry
from .models import Membership, ModuleToggle, OrgUnitUserObjectPermission, PermissionAuditEntry, Role
from .scope import resolve_grants, resolve_scope


def is_active_user(user):
    return user is not None and getattr(user, "is_authenticated", False) and user.is_active


def grant_ids(user, model, action):
    """Ids of ``model`` objects ``user`` holds a direct grant of ``action`` on (cached with the
    scope, see scope.resolve_grants: no query when warm)."""
    reg = registry.get(model)
    codename = reg.codename(action)
    if codename is None or not is_active_user(user):
        return set()
    return set(resolve_grants(user, reg).get(codename, ()))


class AnyOf(Lookup):
    """``column = ANY(%s)`` with the ids as one array parameter: a long ``IN (...)`` list costs
    Django and PostgreSQL several times more (2,000 ids: ~17 ms against ~3 ms). The right side
    may also be an array expression (``ArraySubquery``): PostgreSQL runs it once, as an
    InitPlan, and still scans the column's index with the result."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if hasattr(self.rhs, "as_sql"):
            rhs, rhs_params = compiler.compile(self.rhs)
            return f"{lhs} = ANY({rhs})", [*params, *rhs_params]
        return f"{lhs} = ANY(%s)", [*params, sorted(self.rhs)]


def _among(column, ids):
    return Q(AnyOf(F(column), ids)) if ids else Q(pk__in=[])


def visible(user, queryset, *, action="view"):
    """``queryset`` narrowed to the objects ``user`` may ``action``: those owned by a unit of their
    scope for "<resource>.<action>", plus those they hold a direct grant of ``action`` on."""
    conditions = _conditions(user, queryset, action)
    if conditions is None:
        return queryset
    if not conditions:
        return queryset.none()
    # Id sets side by side: an index scan each, never "subtree OR subquery".
    return queryset.filter(reduce(or_, conditions))


def visible_parts(user, queryset, *, action="view"):
    """What ``visible`` filters by, as conditions none of which matches a row an earlier one
    matches: their rows add up to the visible rows, so a total can be counted as one
    index-only count per part instead of one scan of every row matching any of them. None: no
    narrowing (superusers, a scope over every unit); []: nothing visible."""
    conditions = _conditions(user, queryset, action)
    if not conditions:
        return conditions
    parts = []
    for condition in conditions:
        for earlier in conditions[:len(parts)]:
            condition &= ~earlier
        parts.append(condition)
    return parts


def _conditions(user, queryset, action):
    """The conditions of visible(), one per id set (units, grants, groups); None: no narrowing."""
    if not is_active_user(user):
        return []
    if user.is_superuser:
        return None
    reg = registry.get(queryset)
    code = f"{reg.resource}.{action}"
    scope = resolve_scope(user)
    if scope.covers_every_unit(code):  # no list of ids to send
        return None if reg.unit_field == "pk" else [Q(**{f"{reg.unit_field}__isnull": False})]
    unit_ids = scope.units(code)
    granted = grant_ids(user, reg.model, action)
    if reg.unit_field == "pk":
        ids = unit_ids | granted if granted else unit_ids
        return [_among("pk", ids)] if ids else []
    conditions = [_among(reg.unit_field, unit_ids)] if unit_ids else []
    if granted:
        conditions.append(_among("pk", granted))
    if reg.group_field and action in registry.GROUP_ACTIONS and (unit_ids or granted):
        # The group rows are read inside the same statement (an InitPlan: one small scan of the
        # partial index on group rows), never cached: a group moved or made anywhere (an
        # import's UPDATE too) counts at once.
        conditions.append(Q(AnyOf(F(f"{reg.group_field}_id"), _group_rows(reg, unit_ids, granted))))
    return conditions


def _group_rows(reg, unit_ids, granted):
    """``ARRAY(SELECT id …)`` of the group rows among ``unit_ids``' rows and ``granted``."""
    own = _among(reg.unit_field, unit_ids) if unit_ids else Q(pk__in=[])
    if granted:
        own |= _among("pk", granted)
    return ArraySubquery(reg.model._base_manager.filter(**{reg.group_flag: True}).filter(own).order_by().values("pk"))


def _has_grant(user, reg, action, obj):
    codename = reg.codename(action)
    if codename is None:
        return False
    return reg.grant_model.objects.filter(
        user_id=user.pk,
        content_object_id=obj.pk,
        permission__codename=codename,
        permission__content_type__app_label=reg.model._meta.app_label,
    ).exists()


def can(user, code, obj):
    """May ``user`` do ``code`` ("resource.action") on ``obj``, a registered model instance?

    ``code`` may name another resource managed at the object's unit ("membership.add" on an
    OrgUnit); direct grants only count for the object's own resource.
    """
    if not is_active_user(user):
        return False
    if user.is_superuser:
        return True
    reg = registry.get(obj)
    if resolve_scope(user).allows(code, reg.unit_id(obj)):
        return True
    resource, _dot, action = code.partition(".")
    if resource != reg.resource:
        return False
    if _has_grant(user, reg, action, obj):
        return True
    group = getattr(obj, reg.group_field) if reg.group_field and action in registry.GROUP_ACTIONS else None
    return group is not None and can(user, code, group)


def require(user, code, obj):
    """Raise Http404 when ``user`` may not even view ``obj``, PermissionDenied when they may
    view it but not do ``code``."""
    if can(user, code, obj):
        return
    view_code = f"{registry.get(obj).resource}.view"
    if code != view_code and can(user, view_code, obj):
        raise PermissionDenied
    raise Http404


def get_visible_or_404(user, queryset, pk, *, action="view"):
    """The object ``pk`` of ``queryset`` if ``user`` may view it (else 404), and may ``action`` it
    (else 403)."""
    try:
        obj = visible(user, queryset).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None
    if action != "view":
        require(user, f"{registry.get(queryset).resource}.{action}", obj)
    return obj


def holds_tenant_wide(user, code):
    """Does ``user`` hold ``code`` at every root unit (the whole tree)? Tenant-wide settings such
    as role definitions and module toggles need it."""
    return is_active_user(user) and resolve_scope(user).holds_tenant_wide(code)


def module_enabled(user, module):
    """Is ``module`` on for ``user``: not switched off at one or more of the levels of the units
    they hold memberships at (superusers: always)."""
    from .catalog import MODULES

    if module not in MODULES:
        raise ValueError(f"Unknown module {module!r}")
    if not is_active_user(user):
        return False
    return resolve_scope(user).module_enabled(module)


# --- Lists for the admin pages and API ---------------------------------------------------

def user_list(*, user):
    """Users with a membership at a unit of ``user``'s "user.view" scope; everybody (those without
    a membership too) for superusers and for holders of "user.view" on the whole tree."""
    User = get_user_model()
    if not is_active_user(user):
        return User.objects.none()
    if user.is_superuser:
        return User.objects.all()
    scope = resolve_scope(user)
    if scope.holds_tenant_wide("user.view"):
        return User.objects.all()
    unit_ids = scope.units("user.view")
    if not unit_ids:
        return User.objects.none()
    return User.objects.filter(pk__in=Membership.objects.filter(unit_id__in=unit_ids).values("user_id"))


def user_get(*, user, pk):
    try:
        return user_list(user=user).get(pk=pk)
    except (get_user_model().DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None


def membership_list(*, user, unit=None, member=None):
    """Memberships at units of ``user``'s "membership.view" scope, optionally at one unit (not
    its subtree) or of one member."""
    qs = visible(user, Membership.objects.select_related("user", "unit", "role"))
    if unit is not None:
        qs = qs.filter(unit=unit)
    if member is not None:
        qs = qs.filter(user=member)
    return qs.order_by("unit__path", "user__username", "role__name")


def role_list(*, user):
    """Every role, for users who hold "role.view" somewhere (roles are tenant-wide)."""
    if not is_active_user(user) or not resolve_scope(user).holds_anywhere("role.view"):
        return Role.objects.none()
    return Role.objects.all()


def role_get(*, user, pk):
    try:
        return role_list(user=user).get(pk=pk)
    except (Role.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None


def grant_list(*, user, obj=None):
    """Org unit object grants on units in ``user``'s "object_grant.view" scope."""
    if not is_active_user(user):
        return OrgUnitUserObjectPermission.objects.none()
    qs = OrgUnitUserObjectPermission.objects.select_related("user", "permission", "content_object")
    if not user.is_superuser:
        qs = qs.filter(content_object_id__in=resolve_scope(user).units("object_grant.view"))
    if obj is not None:
        qs = qs.filter(content_object=obj)
    return qs.order_by("content_object__path", "user__username")


def module_toggle_list(*, user):
    if not is_active_user(user) or not resolve_scope(user).holds_anywhere("module.view"):
        return ModuleToggle.objects.none()
    return ModuleToggle.objects.select_related("level").order_by("level__rank", "module")


def audit_list(*, user):
    """Permission audit entries: tenant admins only (they may name anything in the tenant)."""
    if not is_active_user(user) or not user.is_superuser:
        return PermissionAuditEntry.objects.none()
    return PermissionAuditEntry.objects.all()
