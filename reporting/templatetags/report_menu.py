"""The "Dashboard" entry of the navigation bar: shown when the reporting module is on for the
user and they hold "report.view" somewhere in their scope."""
from django import template

from permissions.scope import resolve_scope
from permissions.selectors import module_enabled

register = template.Library()


@register.simple_tag(takes_context=True)
def reports_menu(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.schema_name == "public":
        return False
    return module_enabled(user, "reporting") and resolve_scope(user).holds_anywhere("report.view")
