"""The links of the tenant-admin pages a user may open, for the navigation bar and the page tabs."""
from django import template
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from permissions.scope import resolve_scope

register = template.Library()

# url name, label, the permission the page needs somewhere in the user's scope
PAGES = [
    ("org:tree", _("Org tree"), "org_unit.view"),
    ("org:levels", _("Levels"), "org_unit.view"),
    ("access:roles", _("Roles"), "role.view"),
    ("access:users", _("Users"), "user.view"),
    ("access:grants", _("Object grants"), "object_grant.view"),
    ("access:modules", _("Modules"), "module.view"),
]


def _tenant_user(context):
    """The signed-in user of a tenant's page, else None (platform pages, anonymous visitors)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.schema_name == "public":
        return None
    return user


@register.simple_tag(takes_context=True)
def tenant_admin_links(context):
    user = _tenant_user(context)
    if user is None:
        return []
    request = context["request"]
    scope = resolve_scope(user)
    links = [{"url": reverse(name), "label": label} for name, label, permission in PAGES if scope.holds_anywhere(permission)]
    # The page is the link with the longest URL it starts with (/org/ holds /org/units/1/, not /org/levels/).
    current = max((link["url"] for link in links if request.path.startswith(link["url"])), key=len, default=None)
    for link in links:
        link["active"] = link["url"] == current
    return links


@register.simple_tag(takes_context=True)
def module_on(context, module):
    """``{% module_on "campaigns" as on %}{% if on %}<menu entry>{% endif %}``: hide a switched-off module's links."""
    from permissions.selectors import module_enabled

    user = getattr(context.get("request"), "user", None)
    return bool(user is not None and user.is_authenticated and module_enabled(user, module))


@register.simple_tag(takes_context=True)
def menu_entry(context, module, permission):
    """``{% menu_entry "customers" "customer.view" as on %}``: show a module's menu entry when the
    module is on for the user and they hold ``permission`` somewhere in their scope."""
    from permissions.selectors import module_enabled

    user = _tenant_user(context)
    return bool(user is not None and module_enabled(user, module) and resolve_scope(user).holds_anywhere(permission))
