"""One DRF permission class for every API view, built on the selectors.

A view declares once what it serves::

    class CustomerViewSet(viewsets.ModelViewSet):
        permission_classes = [ScopedPermission]
        resource = "customer"
        module = "customers"                 # optional: 404 where the module is switched off
        scoped_actions = {"export": "export"}  # optional: viewset action or HTTP method -> action

GET/HEAD/OPTIONS need "view", POST "add", PUT/PATCH "change", DELETE "delete". The view-level
check only asks whether the user holds the action somewhere (in their scope or through a direct
grant); where exactly (the unit a new object goes to, the object itself) is checked by the
service and by ``has_object_permission`` through ``can()``. Narrowing lists is the view's job,
through ``selectors.visible()``.
"""
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission

from . import registry
from .scope import resolve_scope
from .selectors import can, grant_ids, is_active_user, module_enabled

METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def view_action(request, view):
    """The catalogue action a request needs: the view's ``scoped_actions`` for its viewset action
    or HTTP method first, then METHOD_ACTIONS."""
    overrides = getattr(view, "scoped_actions", None) or {}
    name = getattr(view, "action", None)
    if name in overrides:
        return overrides[name]
    return overrides.get(request.method, METHOD_ACTIONS.get(request.method))


def _view_model(view):
    queryset = getattr(view, "queryset", None)
    model = getattr(queryset, "model", None)
    return model if model is not None and registry.is_registered(model) else None


class ScopedPermission(BasePermission):
    def has_permission(self, request, view):
        user = request.user
        if not is_active_user(user):
            return False
        module = getattr(view, "module", None)
        if module and not module_enabled(user, module):
            raise NotFound  # a switched-off module does not exist for this user
        if user.is_superuser:
            return True
        resource = getattr(view, "resource", None)
        if not resource:
            raise ImproperlyConfigured(f"{type(view).__name__} uses ScopedPermission without a `resource`.")
        action = view_action(request, view)
        if action is None:
            return False
        if resolve_scope(user).holds_anywhere(f"{resource}.{action}"):
            return True
        model = _view_model(view)
        # Someone with only a direct grant (a shared account) still reaches that object.
        return action != "add" and model is not None and registry.get(model).resource == resource and bool(
            grant_ids(user, model, action)
        )

    def has_object_permission(self, request, view, obj):
        user = request.user
        if user.is_superuser:
            return True
        if not registry.is_registered(type(obj)):
            return True  # not owned by a unit (a role): the service checks the rest
        action = view_action(request, view)
        resource = getattr(view, "resource", None) or registry.get(obj).resource
        if can(user, f"{resource}.{action}", obj):
            return True
        if not can(user, f"{registry.get(obj).resource}.view", obj):
            raise NotFound  # answers exactly like a missing id
        return False
