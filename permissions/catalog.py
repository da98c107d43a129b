"""The product's actions, in one place: what a role can grant.

A permission code is ``"<resource>.<action>"``, e.g. ``"org_unit.change"``. Roles are sets of
codes; a membership grants its role's codes on the unit's whole subtree. New features add
their resources here (and their modules to MODULES), never ad-hoc checks in views.
"""
from django.utils.translation import gettext_lazy as _

DATA_ACTIONS = ("view", "add", "change", "delete", "export", "assign")

# resource -> (label, actions it supports)
RESOURCES = {
    "org_unit": (_("Org units"), ("view", "add", "change", "delete")),
    "user": (_("Users"), ("view", "add", "change", "delete")),
    "membership": (_("Memberships"), ("view", "add", "change", "delete")),
    "role": (_("Roles"), ("view", "add", "change", "delete")),
    "object_grant": (_("Object grants"), ("view", "add", "delete")),
    "module": (_("Module settings"), ("view", "change")),
    "customer": (_("Customers"), DATA_ACTIONS),
    "report": (_("Reports"), ("view", "export")),
}

# Modules a tenant can switch on or off per level (R2). "core" modules cannot be switched off.
MODULES = {
    "customers": _("Customer archive"),
    "reporting": _("Reports and dashboards"),
    "campaigns": _("Campaigns"),
    "competitors": _("Competitor intelligence"),
}

ALL_PERMISSIONS = tuple(f"{resource}.{action}" for resource, (_label, actions) in RESOURCES.items() for action in actions)


def is_valid(code):
    return code in ALL_PERMISSIONS


def codes(resource, *actions):
    return [f"{resource}.{action}" for action in actions]


_ADMIN = (
    codes("org_unit", "view", "add", "change", "delete")
    + codes("user", "view", "add", "change", "delete")
    + codes("membership", "view", "add", "change", "delete")
    + codes("object_grant", "view", "add", "delete")
)

# The built-in starting roles; tenant admins may edit them or add their own.
BUILTIN_ROLES = {
    "tenant_admin": (_("Tenant admin"), list(ALL_PERMISSIONS)),
    "hq_analyst": (
        _("HQ analyst"),
        codes("org_unit", "view") + codes("customer", "view", "export") + codes("report", "view", "export"),
    ),
    "provincial_manager": (
        _("Provincial manager"),
        codes("org_unit", "view") + codes("user", "view") + codes("membership", "view")
        + codes("customer", *DATA_ACTIONS) + codes("report", "view", "export"),
    ),
    # Holds the data permissions too: delegation never grants a role beyond the granter's own,
    # so a provincial admin must hold what their managers and account managers hold.
    "provincial_admin": (
        _("Provincial admin"),
        _ADMIN + codes("role", "view") + codes("module", "view")
        + codes("customer", *DATA_ACTIONS) + codes("report", "view", "export"),
    ),
    "account_manager": (
        _("Account manager"),
        codes("org_unit", "view") + codes("customer", "view", "add", "change") + codes("report", "view"),
    ),
}
