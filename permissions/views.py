"""Tenant-admin pages for roles (with the permission matrix), users and their memberships,
object grants and module toggles.

Every page needs a login and the page's permission somewhere in the user's scope (else a 403
page); lists come from the selectors, so each user sees only their part of the tenant; each
form posts to its page, which calls one service and shows its errors on the form.
"""
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View

from org_hierarchy.forms import add_service_errors
from org_hierarchy.models import OrgLevel, OrgUnit
from org_hierarchy.selectors import level_list, unit_list

from . import registry, selectors, services
from .catalog import MODULES, RESOURCES
from .forms import ACTION_LABELS, ActionForm, GrantForm, MembershipForm, ModuleToggleForm, RoleCreateForm, RoleForm, UserCreateForm
from .models import OrgUnitUserObjectPermission, Role
from .scope import resolve_scope

User = get_user_model()
PAGE_SIZE = 50


# --- What every tenant-admin page shares -----------------------------------------------------

class ScopedPage(LoginRequiredMixin):
    """A logged-in user holding ``permission`` ("resource.action") at some unit; others get a 403 page."""

    permission = None

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not resolve_scope(request.user).holds_anywhere(self.permission):
            return render(request, "permissions/forbidden.html", status=403)
        return super().dispatch(request, *args, **kwargs)


def run_service(request, form, call, rename=None, announce=True):
    """Validate ``form`` and call ``call(cleaned_data)``, a service. True on success, with the
    service's answer in ``form.result``. Otherwise ``form.status`` is the status to answer with:
    200 with the service's field errors on the form, or 403 for a refusal, whose reason is in
    ``form.refusal`` and, when ``announce``, in a message at the top of the page (the form
    itself may not be shown to this user)."""
    form.status, form.result, form.refusal = 200, None, None
    if not form.is_valid():
        return False
    try:
        form.result = call(form.cleaned_data)
    except ValidationError as exc:
        add_service_errors(form, exc, rename)
        return False
    except PermissionDenied as exc:
        form.status, form.refusal = 403, str(exc) or _("You are not allowed to do this.")
        if announce:
            messages.error(request, form.refusal)
        return False
    return True


def page_of(request, queryset):
    """One page of a long list (?page=N), for the users and grants pages."""
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def matrix(permissions, *, editable):
    """Rows of the permission matrix: each resource with one cell per action of the catalogue."""
    held = set(permissions)
    return [
        {
            "code": resource,
            "label": label,
            "cells": [
                {"code": f"{resource}.{action}", "action": action, "label": ACTION_LABELS[action],
                 "exists": action in actions, "checked": f"{resource}.{action}" in held, "editable": editable}
                for action in ACTION_LABELS
            ],
        }
        for resource, (label, actions) in RESOURCES.items()
    ]


# --- Roles ----------------------------------------------------------------------------------

class RolesPage(ScopedPage, View):
    permission = "role.view"
    model = Role

    def get(self, request, bound=None, status=200):
        may_add = selectors.holds_tenant_wide(request.user, "role.add")
        context = {
            "roles": selectors.role_list(user=request.user).order_by("name"),
            "form": (bound or RoleCreateForm(prefix="role")) if may_add else None,
        }
        return render(request, "permissions/roles.html", context, status=status)

    def post(self, request):
        form = RoleCreateForm(request.POST, prefix="role")
        if not run_service(request, form, lambda d: services.role_create(actor=request.user, **d)):
            return self.get(request, bound=form, status=form.status)
        messages.success(request, _("The role %(role)s was created; now choose its permissions.") % {"role": form.result.name})
        return redirect("access:role", pk=form.result.pk)


class RolePage(ScopedPage, View):
    """One role with its permission matrix (resources x actions)."""

    permission = "role.view"
    model = Role

    def get(self, request, pk, bound=None, status=200):
        role = selectors.role_get(user=request.user, pk=pk)
        editable = selectors.holds_tenant_wide(request.user, "role.change")
        form = bound if isinstance(bound, RoleForm) else RoleForm(
            prefix="role", initial={"name": role.name, "description": role.description}
        )
        permissions = form.data.getlist("role-permissions") if form.is_bound else role.permissions
        context = {
            "role": role,
            "form": form,
            "editable": editable,
            "deletable": selectors.holds_tenant_wide(request.user, "role.delete"),
            "delete_errors": bound.non_field_errors() if isinstance(bound, ActionForm) else None,
            "matrix": matrix(permissions, editable=editable),
            "actions": ACTION_LABELS,
        }
        return render(request, "permissions/role.html", context, status=status)

    def post(self, request, pk):
        role = selectors.role_get(user=request.user, pk=pk)
        if request.POST.get("action") == "delete":
            form = ActionForm({})
            if not run_service(request, form, lambda d: services.role_delete(actor=request.user, role=role)):
                return self.get(request, pk, bound=form, status=form.status)
            messages.success(request, _("The role %(role)s was deleted.") % {"role": role.name})
            return redirect("access:roles")
        form = RoleForm(request.POST, prefix="role")
        if not run_service(request, form, lambda d: services.role_update(actor=request.user, role=role, **d)):
            return self.get(request, pk, bound=form, status=form.status)
        messages.success(request, _("The role %(role)s was saved.") % {"role": form.result.name})
        return redirect("access:role", pk=role.pk)


# --- Users and memberships ----------------------------------------------------------------

def open_units(user):
    return unit_list(user=user)


class UsersPage(ScopedPage, View):
    """The users of the caller's scope with their visible memberships; creating one shows the
    generated password once, on the answer to the form (it is never stored or shown again)."""

    permission = "user.view"
    model = User

    def create_form(self, data=None):
        user = self.request.user
        return UserCreateForm(data, prefix="user", units=open_units(user), roles=selectors.role_list(user=user).order_by("name"))

    def get(self, request, bound=None, status=200, created=None):
        memberships = Prefetch("memberships", queryset=selectors.membership_list(user=request.user), to_attr="visible_memberships")
        users = selectors.user_list(user=request.user).order_by("username").prefetch_related(memberships)
        may_add = resolve_scope(request.user).holds_anywhere("user.add")
        context = {
            "page": page_of(request, users),
            "form": (bound if bound is not None else self.create_form()) if may_add else None,
            "created": created,
        }
        return render(request, "permissions/users.html", context, status=status)

    def post(self, request):
        form = self.create_form(request.POST)
        if not run_service(request, form, lambda d: services.user_create(actor=request.user, **d)):
            return self.get(request, bound=form, status=form.status)
        user, password = form.result
        return self.get(request, created={"user": user, "password": password})


class UserPage(ScopedPage, View):
    """One user: their visible memberships (add, remove) and deactivation."""

    permission = "user.view"
    model = User

    def membership_form(self, data=None):
        user = self.request.user
        return MembershipForm(data, prefix="membership", units=open_units(user), roles=selectors.role_list(user=user).order_by("name"))

    def get(self, request, pk, bound=None, status=200):
        person = selectors.user_get(user=request.user, pk=pk)
        scope = resolve_scope(request.user)
        other = person.pk != request.user.pk  # nobody changes their own memberships or account here
        context = {
            "person": person,
            "memberships": selectors.membership_list(user=request.user, member=person),
            "form": (bound if isinstance(bound, MembershipForm) else self.membership_form())
            if other and scope.holds_anywhere("membership.add") else None,
            "may_remove": other and scope.holds_anywhere("membership.delete"),
            "may_deactivate": other and scope.holds_anywhere("user.delete"),
            "action_errors": bound.non_field_errors() if isinstance(bound, ActionForm) else None,
        }
        return render(request, "permissions/user.html", context, status=status)

    def post(self, request, pk):
        person = selectors.user_get(user=request.user, pk=pk)
        action = request.POST.get("action")
        actor = request.user
        if action == "add_membership":
            form = self.membership_form(request.POST)
            call = lambda d: services.membership_add(actor=actor, user=person, **d)  # noqa: E731
            done = _("The membership was added.")
        elif action == "remove_membership":
            try:
                membership = selectors.membership_list(user=actor, member=person).get(pk=request.POST.get("membership") or None)
            except (ValueError, person.memberships.model.DoesNotExist):
                raise Http404 from None
            form = ActionForm({})
            call = lambda d: services.membership_remove(actor=actor, membership=membership)  # noqa: E731
            done = _("The membership was removed.")
        elif action in ("deactivate", "activate"):
            form = ActionForm({})
            service = services.user_deactivate if action == "deactivate" else services.user_activate
            call = lambda d: service(actor=actor, user=person)  # noqa: E731
            done = _("The account was deactivated.") if action == "deactivate" else _("The account was activated.")
        else:
            return self.get(request, pk, status=400)
        if not run_service(request, form, call):
            return self.get(request, pk, bound=form, status=form.status)
        messages.success(request, done)
        return redirect("access:user", pk=person.pk)


# --- Object grants ----------------------------------------------------------------------------

def grant_actions():
    return list(registry.get(OrgUnit).grant_codenames)


def grant_action(grant):
    codenames = registry.get(OrgUnit).grant_codenames
    return next((action for action, codename in codenames.items() if codename == grant.permission.codename), "")


class GrantsPage(ScopedPage, View):
    """Single units shared with single users beyond their memberships (e.g. a national key
    account's unit shared with another province's manager)."""

    permission = "object_grant.view"
    model = OrgUnitUserObjectPermission

    def grant_form(self, data=None):
        user = self.request.user
        return GrantForm(
            data, prefix="grant", users=selectors.user_list(user=user).filter(is_active=True),
            units=open_units(user), actions=grant_actions(),
        )

    def get(self, request, bound=None, status=200):
        page = page_of(request, selectors.grant_list(user=request.user))
        for grant in page:
            grant.action = grant_action(grant)
            grant.action_label = ACTION_LABELS.get(grant.action, grant.action)
        scope = resolve_scope(request.user)
        context = {
            "page": page,
            "form": (bound if isinstance(bound, GrantForm) else self.grant_form()) if scope.holds_anywhere("object_grant.add") else None,
            "action_errors": bound.non_field_errors() if isinstance(bound, ActionForm) else None,
            "may_remove": scope.holds_anywhere("object_grant.delete"),
        }
        return render(request, "permissions/grants.html", context, status=status)

    def post(self, request):
        actor = request.user
        if request.POST.get("action") == "remove":
            try:
                grant = selectors.grant_list(user=actor).get(pk=request.POST.get("grant") or None)
            except (ValueError, OrgUnitUserObjectPermission.DoesNotExist):
                raise Http404 from None
            form = ActionForm({})
            call = lambda d: services.grant_remove(actor=actor, user=grant.user, obj=grant.content_object, action=grant_action(grant))  # noqa: E731
            done = _("The grant was withdrawn.")
        else:
            form = self.grant_form(request.POST)
            call = lambda d: services.grant_add(actor=actor, user=d["user"], obj=d["unit"], action=d["action"])  # noqa: E731
            done = _("The grant was added.")
        if not run_service(request, form, call):
            return self.get(request, bound=form, status=form.status)
        messages.success(request, done)
        return redirect("access:grants")


# --- Module toggles ---------------------------------------------------------------------------

class ModulesPage(ScopedPage, View):
    """Levels x modules switches. A switch posts on change through htmx and gets its cell back;
    without JavaScript the row's button submits the same form."""

    permission = "module.view"
    model = OrgLevel

    def cells(self, levels):
        off = {(t.level_id, t.module) for t in selectors.module_toggle_list(user=self.request.user) if not t.enabled}
        return [
            {"level": level, "modules": [
                {"code": code, "label": label, "enabled": (level.pk, code) not in off} for code, label in MODULES.items()
            ]}
            for level in levels
        ]

    def get(self, request, error=None, status=200):
        context = {
            "rows": self.cells(level_list()),
            "modules": MODULES,
            "editable": selectors.holds_tenant_wide(request.user, "module.change"),
            "error": error,
        }
        return render(request, "permissions/modules.html", context, status=status)

    def post(self, request):
        form = ModuleToggleForm(request.POST)
        htmx = bool(request.headers.get("HX-Request"))
        ok = run_service(request, form, lambda d: services.module_set(actor=request.user, **d), announce=not htmx)
        if htmx and form.is_valid():
            # The cell as it now is, with the refusal if any (200: htmx swaps only successful answers).
            level = form.cleaned_data["level"]
            cell = next(c for c in self.cells([level])[0]["modules"] if c["code"] == form.cleaned_data["module"])
            context = {"level": level, "cell": cell, "editable": True, "error": form.refusal}
            return render(request, "permissions/_module_cell.html", context)
        if not ok:
            errors = [e for errors in form.errors.values() for e in errors]
            return self.get(request, error=" ".join(errors), status=form.status if form.status != 200 else 400)
        messages.success(request, _("The modules were saved."))
        return redirect("access:modules")
