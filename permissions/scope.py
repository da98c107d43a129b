"""A user's resolved scope: for each permission code, the ids of the org units where they hold it.

Role R at unit U grants R's codes on U's whole subtree (every unit whose materialised path
starts with U's). A membership at a closed unit grants nothing; closed units inside an open
subtree are still part of it (their history stays visible to whoever holds the parent).

Resolution costs three queries (memberships with their roles and units; the units under the
distinct membership roots, one ``path LIKE 'P%'`` per root after dropping nested roots, plus
the top units; the module toggles of the user's levels) and is cached in Redis per tenant and user, and so are the user's direct object grants
(``resolve_grants``, one query per model when missing). Cache keys carry a per-tenant
generation: ``invalidate_scopes()`` bumps it, so every cached scope and grant set of the
tenant goes stale at once after any membership, tree, role, grant or module change.
"""
import logging
import time
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)

EMPTY = frozenset()
SCOPE_TTL = 24 * 60 * 60  # stale generations are unreachable anyway; the TTL only frees memory
GENERATION_KEY = "perm:scope:gen"


@dataclass(frozen=True)
class Scope:
    is_superuser: bool = False
    by_code: dict = field(default_factory=dict)  # code -> frozenset of unit ids (subtrees expanded)
    all_units: frozenset = EMPTY  # superusers only: every unit id
    tenant_wide: frozenset = EMPTY  # codes held at every open top unit: tenant-wide settings
    whole_tree: frozenset = EMPTY  # codes held on every unit there is, closed ones included
    level_ids: frozenset = EMPTY  # levels of the open units the user holds memberships at
    modules_off: frozenset = EMPTY  # modules switched off at every one of those levels

    def units(self, code):
        return self.all_units if self.is_superuser else self.by_code.get(code, EMPTY)

    def allows(self, code, unit_id):
        return self.is_superuser or unit_id in self.by_code.get(code, EMPTY)

    def holds_tenant_wide(self, code):
        return self.is_superuser or code in self.tenant_wide

    def covers_every_unit(self, code):
        return self.is_superuser or code in self.whole_tree

    def holds_anywhere(self, code):
        return self.is_superuser or bool(self.by_code.get(code))

    def module_enabled(self, module):
        # Enabled when at least one of the user's levels has not switched it off.
        return self.is_superuser or (bool(self.level_ids) and module not in self.modules_off)


NO_SCOPE = Scope()


# --- Generation and invalidation -------------------------------------------------------

def _pending():
    """Schemas whose scopes this connection changed inside a transaction not yet committed."""
    pending = getattr(connection, "_kam_scope_pending", None)
    if pending is None:
        pending = connection._kam_scope_pending = set()
    if pending and not connection.in_atomic_block:
        pending.clear()  # the transaction ended without our commit hook: rolled back
    return pending


def _bump(schema):
    memo = getattr(connection, "_kam_generations", None)
    if memo:
        memo.clear()

    def bump():
        # A missing counter starts from the clock, so it never reuses an old generation.
        cache.add(GENERATION_KEY, int(time.time() * 1000), timeout=None)
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # evicted between add and incr
            cache.set(GENERATION_KEY, int(time.time() * 1000), timeout=None)

    if connection.schema_name == schema:
        bump()
    else:
        with schema_context(schema):
            bump()


def _committed(schema):
    pending = _pending()
    if schema in pending:
        pending.discard(schema)
        _bump(schema)


def invalidate_scopes():
    """Make every cached scope of the current tenant stale.

    Inside a transaction the generation is bumped now (other processes stop trusting their
    cached scopes) and again on commit (anything they cached from the old data meanwhile is
    dropped); until then this connection resolves scopes from the database without the cache.
    """
    schema = connection.schema_name
    if not connection.in_atomic_block:
        _bump(schema)
        return
    pending = _pending()
    if schema not in pending:
        pending.add(schema)
        _bump(schema)
    transaction.on_commit(lambda: _committed(schema), robust=True)


def _generation():
    # Within a request the tenant's generation is read once (every permission check of the
    # request then costs no round trip); this connection's own invalidations clear it.
    memo = getattr(connection, "_kam_generations", None)
    if memo is not None and connection.schema_name in memo:
        return memo[connection.schema_name]
    gen = cache.get(GENERATION_KEY)
    if gen is None:
        cache.add(GENERATION_KEY, int(time.time() * 1000), timeout=None)
        gen = cache.get(GENERATION_KEY)
    if memo is not None:
        memo[connection.schema_name] = gen
    return gen


def request_started(**kwargs):
    connection._kam_generations = {}


def request_finished(**kwargs):
    connection._kam_generations = None


def connect_request_memo():
    """Called from PermissionsConfig.ready: generations are remembered for one request only
    (outside requests, in workers and shells, every check reads the current one)."""
    from django.core import signals

    signals.request_started.connect(request_started, dispatch_uid="perm-scope-request-started")
    signals.request_finished.connect(request_finished, dispatch_uid="perm-scope-request-finished")


# --- Resolution ----------------------------------------------------------------------

def resolve_scope(user):
    """The user's Scope in the current tenant, from the cache when it is current."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return NO_SCOPE
    if connection.schema_name in _pending():
        return _compute(user)  # our own uncommitted changes: never cache them

    gen = _generation()
    memo = getattr(user, "_kam_scope", None)
    if memo is not None and memo[0] == (connection.schema_name, gen):
        return memo[1]
    key = f"perm:scope:{gen}:{user.pk}:{int(user.is_superuser)}"
    scope = cache.get(key)
    if scope is None:
        scope = _compute(user)
        cache.set(key, scope, timeout=SCOPE_TTL)
    user._kam_scope = ((connection.schema_name, gen), scope)
    return scope


def resolve_grants(user, reg):
    """``{permission codename: frozenset of object ids}``: ``user``'s direct grants on
    ``reg.model`` in the current tenant, cached beside the scope under the same generation (so
    the same bump makes both stale: grant services and grant model signals call
    ``invalidate_scopes``)."""
    if reg.grant_model is None or user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    if connection.schema_name in _pending():
        return _compute_grants(user, reg)

    gen = _generation()
    label = reg.model._meta.label_lower
    memo = getattr(user, "_kam_grants", None)
    if memo is None or memo[0] != (connection.schema_name, gen):
        memo = user._kam_grants = ((connection.schema_name, gen), {})
    if label in memo[1]:
        return memo[1][label]
    key = f"perm:grants:{gen}:{user.pk}:{label}"
    grants = cache.get(key)
    if grants is None:
        grants = _compute_grants(user, reg)
        cache.set(key, grants, timeout=SCOPE_TTL)
    memo[1][label] = grants
    return grants


def _compute_grants(user, reg):
    rows = reg.grant_model.objects.filter(
        user_id=user.pk, permission__content_type__app_label=reg.model._meta.app_label,
    ).values_list("permission__codename", "content_object_id")
    grants = {}
    for codename, object_id in rows:
        grants.setdefault(codename, set()).add(object_id)
    return {codename: frozenset(ids) for codename, ids in grants.items()}


def prune_nested(paths):
    """Drop every path that lies under another one of ``paths``."""
    kept = []
    for path in sorted(paths):
        if not kept or not path.startswith(kept[-1]):
            kept.append(path)
    return kept


def _compute(user):
    from org_hierarchy.models import OrgUnit
    from permissions.models import Membership, ModuleToggle

    if user.is_superuser:
        return Scope(is_superuser=True, all_units=frozenset(OrgUnit.objects.values_list("pk", flat=True)))

    rows = list(
        Membership.objects.filter(user_id=user.pk, unit__is_active=True).values_list(
            "unit__path", "unit__level_id", "role__permissions"
        )
    )
    if not rows:
        return NO_SCOPE

    paths_by_code = {}
    for path, _level, codes in rows:
        for code in codes:
            paths_by_code.setdefault(code, set()).add(path)

    roots = prune_nested({path for path, _level, _codes in rows})
    # The top units come along in the same query: "tenant-wide" means held at all open ones.
    found = list(
        OrgUnit.objects.filter(reduce(or_, (Q(path__startswith=root) for root in roots), Q(depth=1)))
        .order_by()
        .values_list("pk", "path", "depth", "is_active")
    )
    tops = [(pk, active) for pk, _path, depth, active in found if depth == 1]
    units = [(pk, path) for pk, path, _depth, _active in found if path.startswith(tuple(roots))]

    by_roots = {}  # codes held at the same roots share one frozenset (also in the pickle)
    by_code = {}
    for code, paths in paths_by_code.items():
        key = tuple(prune_nested(paths))
        if key not in by_roots:
            by_roots[key] = frozenset(pk for pk, path in units if path.startswith(key))
        by_code[code] = by_roots[key]

    def held_at_all(units):
        return frozenset(code for code, ids in by_code.items() if units and all(pk in ids for pk in units))

    tenant_wide = held_at_all([pk for pk, active in tops if active])
    whole_tree = held_at_all([pk for pk, _active in tops])  # a closed top unit's subtree too

    level_ids = frozenset(level for _path, level, _codes in rows)
    off_levels = {}
    for module, level in ModuleToggle.objects.filter(level_id__in=level_ids, enabled=False).values_list("module", "level_id"):
        off_levels.setdefault(module, set()).add(level)
    modules_off = frozenset(module for module, levels in off_levels.items() if levels >= level_ids)

    return Scope(
        by_code=by_code, tenant_wide=tenant_wide, whole_tree=whole_tree, level_ids=level_ids, modules_off=modules_off
    )
