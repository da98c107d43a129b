"""Tenant-admin pages of the org tree: browse it, add, rename, move, merge and close units, and
edit the levels. Each form posts to its page, which calls one service and shows the service's
field errors on the form; what a user sees and which forms appear come from the selectors."""
from django.contrib import messages
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from permissions.selectors import can, holds_tenant_wide
from permissions.views import ScopedPage, run_service

from . import selectors, services
from .forms import LevelForm, LevelUpdateForm, UnitCloseForm, UnitCreateForm, UnitMergeForm, UnitMoveForm, UnitRenameForm
from .models import OrgLevel, OrgUnit


OPEN_LEVELS = 2  # the tree page opens the first two levels of what the user sees


def build_tree(units):
    """Nest units (in path order) under their parents; a unit whose parent is not among them is
    a root. Sets ``kids`` and ``open`` (shown expanded) on each unit."""
    by_id = {unit.pk: unit for unit in units}
    roots = []
    for unit in units:
        unit.kids = []
    for unit in units:  # path order: a parent always comes before its children
        parent = by_id.get(unit.parent_id)
        unit.shown_depth = 0 if parent is None else parent.shown_depth + 1
        unit.open = unit.shown_depth < OPEN_LEVELS
        (parent.kids if parent is not None else roots).append(unit)
    return roots


class TreePage(ScopedPage, View):
    """The units the user may view, as a tree with expand/collapse; ?q= filters to a flat list
    (htmx swaps just the tree while typing)."""

    permission = "org_unit.view"
    model = OrgUnit

    def get(self, request, form=None, status=200):
        units = selectors.unit_list(user=request.user)
        query = request.GET.get("q", "").strip()
        context = {"query": query}
        if query:
            context["matches"] = list(units.filter(Q(name__icontains=query) | Q(code__icontains=query))[:200])
        else:
            context["roots"] = build_tree(list(units))
        if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "org-tree":
            return render(request, "org_hierarchy/_tree.html", context)
        may_add_roots = request.user.is_superuser  # the services' rule: only tenant admins add top-level units
        context.update(
            add_form=(form or UnitCreateForm(prefix="root", levels=selectors.level_list())) if may_add_roots else None,
            levels_exist=selectors.level_list().exists(),
        )
        return render(request, "org_hierarchy/tree.html", context, status=status)

    def post(self, request):
        form = UnitCreateForm(request.POST, prefix="root", levels=selectors.level_list())
        if not run_service(request, form, lambda data: services.unit_create(actor=request.user, parent=None, **data)):
            return self.get(request, form=form, status=form.status)
        unit = form.result
        messages.success(request, _("%(unit)s was added.") % {"unit": unit})
        return redirect("org:unit", pk=unit.pk)


class UnitPage(ScopedPage, View):
    """One unit: its place in the tree, its children, the reorganisation forms the user may use,
    and its recent audit entries."""

    permission = "org_unit.view"
    model = OrgUnit
    forms = {
        "add_child": ("org_unit.add", UnitCreateForm),
        "rename": ("org_unit.change", UnitRenameForm),
        "move": ("org_unit.change", UnitMoveForm),
        "merge": ("org_unit.delete", UnitMergeForm),
        "close": ("org_unit.delete", UnitCloseForm),
    }

    def form_kwargs(self, name, unit):
        if name == "add_child":
            return {"levels": selectors.level_list().filter(rank__gt=unit.level.rank)}
        if name in ("move", "merge"):
            # Never the unit itself or anything under it: the service would refuse them anyway.
            return {"units": selectors.unit_list(user=self.request.user).exclude(path__startswith=unit.path)}
        return {}

    def make_form(self, name, unit, data=None):
        initial = {"name": unit.name} if name == "rename" else None
        return self.forms[name][1](data, prefix=name, initial=initial, **self.form_kwargs(name, unit))

    def get(self, request, pk, bound=None, status=200):
        unit = selectors.unit_get(user=request.user, pk=pk)
        visible = selectors.unit_list(user=request.user, include_closed=True)
        ancestors = list(visible.filter(path__in=[unit.path[:i] for i in range(OrgUnit.steplen, len(unit.path), OrgUnit.steplen)]))
        forms = {}
        if unit.is_active:
            for name, (code, _form) in self.forms.items():
                if can(request.user, code, unit):
                    forms[name] = bound if bound is not None and bound.prefix == name else self.make_form(name, unit)
        context = {
            "unit": unit,
            "ancestors": ancestors,
            "children": list(visible.filter(parent=unit)),
            "forms": forms,
            "audit": list(selectors.audit_list(user=request.user, unit=unit)[:20]),
        }
        return render(request, "org_hierarchy/unit.html", context, status=status)

    def post(self, request, pk):
        unit = selectors.unit_get(user=request.user, pk=pk)
        name = request.POST.get("action")
        if name not in self.forms:
            return self.get(request, pk, status=400)
        form = self.make_form(name, unit, request.POST)
        actor = request.user
        calls = {
            "add_child": lambda d: services.unit_create(actor=actor, parent=unit, **d),
            "rename": lambda d: services.unit_rename(actor=actor, unit=unit, name=d["name"]),
            "move": lambda d: services.unit_move(actor=actor, unit=unit, new_parent=d["new_parent"]),
            "merge": lambda d: services.unit_merge(actor=actor, source=unit, survivor=d["survivor"]),
            "close": lambda d: services.unit_close(actor=actor, unit=unit),
        }
        if not run_service(request, form, calls[name], rename={"source": None, "unit": None, "parent": None}):
            return self.get(request, pk, bound=form, status=form.status)
        result = form.result
        done = {
            "add_child": _("%(unit)s was added."),
            "rename": _("%(unit)s was renamed."),
            "move": _("%(unit)s was moved."),
            "merge": _("The unit was merged into %(unit)s."),
            "close": _("%(unit)s was closed."),
        }
        messages.success(request, done[name] % {"unit": result})
        return redirect("org:unit", pk=result.pk)


class LevelsPage(ScopedPage, View):
    """The levels of the tree; tenant-wide org admins add, rename, re-rank and delete them."""

    permission = "org_unit.view"
    model = OrgLevel

    def get(self, request, bound=None, status=200):
        editable = holds_tenant_wide(request.user, "org_unit.change")
        levels = list(selectors.level_list())
        if editable:
            for level in levels:
                level.form = (
                    bound if bound is not None and bound.prefix == f"level-{level.pk}"
                    else LevelUpdateForm(prefix=f"level-{level.pk}", initial={"name": level.name, "rank": level.rank})
                )
        add_form = bound if bound is not None and bound.prefix == "new" else LevelForm(prefix="new")
        context = {"levels": levels, "editable": editable, "add_form": add_form if editable else None}
        return render(request, "org_hierarchy/levels.html", context, status=status)

    def post(self, request):
        action = request.POST.get("action")
        actor = request.user
        if action == "create":
            form = LevelForm(request.POST, prefix="new")
            call = lambda d: services.level_create(actor=actor, **d)  # noqa: E731
        elif action in ("update", "delete"):
            level_id = request.POST.get("level", "")
            level = selectors.level_get(level_id)
            if level is None:
                return self.get(request, status=400)
            prefix = f"level-{level.pk}"
            if action == "update":
                form = LevelUpdateForm(request.POST, prefix=prefix)
                call = lambda d: services.level_update(actor=actor, level=level, **d)  # noqa: E731
            else:  # the row's own form, bound to its current values, carries the service's errors
                form = LevelUpdateForm({f"{prefix}-name": level.name, f"{prefix}-rank": level.rank}, prefix=prefix)
                call = lambda d: services.level_delete(actor=actor, level=level)  # noqa: E731
        else:
            return self.get(request, status=400)
        if not run_service(request, form, call):
            return self.get(request, bound=form, status=form.status)
        messages.success(request, _("The levels were saved."))
        return redirect(reverse("org:levels"))
