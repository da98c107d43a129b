"""Customer pages under /customers/: the list with its filters, the customer 360 page with its
history tab, the create and edit forms, and the forms for what hangs off a customer
(contacts, subscriptions, interactions: see _parts.py).

Reads go through key_accounts.selectors (a customer outside the user's scope answers 404, one
they may view but not change 403), writes through key_accounts.services; buttons only show
what permissions.selectors.can() allows.
"""
from django.contrib import messages
from django.core.exceptions import EmptyResultSet, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.db.models.functions import Concat
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from org_hierarchy.selectors import unit_list
from permissions.scope import resolve_scope
from permissions.selectors import can
from permissions.views import run_service

from .. import selectors, services
from ..forms import SHOWN_PEOPLE, CustomerForm, CustomerSearchForm, person_label
from ..models import Customer, Interaction
from . import _parts
from ._common import CustomerPage, is_htmx
from ._history import present

PAGE_SIZE = 50
TIMELINE = 100  # the newest interactions on the 360 page
MEMBERS = 20  # group members listed on the 360 page (the list page has them all)
SORTABLE = [("name", gettext_lazy("Name")), ("grade", gettext_lazy("Grade")), ("status", gettext_lazy("Status")),
            ("created", gettext_lazy("Created"))]
CHANNEL_BADGES = {"call_centre": "text-bg-info", "business_hall": "text-bg-secondary", "web": "text-bg-light border",
                  "mobile": "text-bg-dark", "field_visit": "text-bg-success"}
PROFILE = ["kind", "credit_code", "industry", "size", "grade", "status", "org_unit", "account_manager",
           "is_national_key_account", "is_potential_key_account", "is_group", "phone", "address", "external_id",
           "created_at", "updated_at"]


def _query(params, **changes):
    params = params.copy()
    for name, value in changes.items():
        params.pop(name, None)
        if value is not None:
            params[name] = value
    return params.urlencode()


def _given(query):
    """The parameters that have a value: the filter form sends every field, "All" as empty."""
    params = query.copy()
    for name in list(params):
        values = [value for value in params.getlist(name) if value.strip()]
        if values:
            params.setlist(name, values)
        else:
            del params[name]
    return params


def _columns(params):
    """The sortable columns with the link that sorts by each (ascending, then descending)."""
    current = params.get("ordering", "")
    columns = []
    for key, label in SORTABLE:
        direction = "asc" if current == key else "desc" if current == f"-{key}" else None
        columns.append({
            "key": key, "label": label, "direction": direction,
            "query": _query(params, ordering=f"-{key}" if direction == "asc" else key, page=None),
        })
    return columns


def _labelled(customers):
    """The page's rows with their choice labels looked up once per page, not per row
    (get_FOO_display hashes the choices at every call: a third of the page's time)."""
    labels = {name: {key: str(label) for key, label in Customer._meta.get_field(name).flatchoices}
              for name in ("kind", "grade", "status")}
    rows = list(customers)
    for row in rows:
        row.labels = {name: labels[name].get(getattr(row, name), getattr(row, name)) for name in labels}
    return rows


class CustomerPaginator(Paginator):
    @cached_property
    def count(self):
        # Large totals come from a short-lived cache (counting a province's million rows is slow).
        try:
            return selectors.customer_count(self.object_list)
        except EmptyResultSet:  # a query that can match nothing has no SQL to key the cache on
            return 0


class CustomerList(CustomerPage):
    """The customers the user may view, filtered and sorted as asked, 50 a page with the total;
    htmx swaps only the results while the filters change."""

    model = Customer

    def get(self, request):
        user = request.user
        params = _given(request.GET)
        errors = None
        try:
            queryset = selectors.customer_list(user=user, params=params)
        except ValidationError as exc:
            queryset, errors = Customer.objects.none(), exc.messages
        page = CustomerPaginator(queryset, PAGE_SIZE).get_page(params.get("page"))
        base = _query(params, page=None)
        context = {
            "page": page,
            "customers": _labelled(page.object_list),
            "detail_prefix": reverse("key_accounts:list"),  # a detail URL is <list URL><id>/: one reverse() a page
            "errors": errors,
            "query": base,
            "page_prefix": f"?{base}&page=" if base else "?page=",
            "columns": _columns(params),
            "may_export": resolve_scope(user).holds_anywhere("customer.export"),
        }
        if is_htmx(request, "customer-results"):
            return render(request, "key_accounts/_results.html", context)
        context["filters"] = CustomerSearchForm(
            params, units=unit_list(user=user), managers=selectors.account_managers(user=user)
        )
        context["may_add"] = resolve_scope(user).holds_anywhere("customer.add")
        context["narrowed"] = any(params.get(name) for name in context["filters"].fields if name != "q")
        return render(request, "key_accounts/list.html", context)


class PersonOptions(CustomerPage):
    """The options of an account-manager picker: the people the user may choose whose name or
    username contains ?search=, the chosen one (?manager= or ?account_manager=) kept first."""

    def get(self, request):
        people = selectors.account_managers(user=request.user)
        search = request.GET.get("search", "").strip()
        if search:
            people = people.annotate(full_name=Concat("last_name", "first_name")).filter(
                Q(username__icontains=search) | Q(full_name__icontains=search) | Q(first_name__icontains=search)
            )
        shown = [(p.pk, person_label(p)) for p in people[:SHOWN_PEOPLE]]
        chosen = request.GET.get("manager") or request.GET.get("account_manager") or ""
        if chosen.isdigit() and all(pk != int(chosen) for pk, _label in shown):
            kept = selectors.account_managers(user=request.user).filter(pk=chosen).first()
            shown = ([(kept.pk, person_label(kept))] if kept else []) + shown
        blank = {"all": _("All"), "none": "---------"}.get(request.GET.get("blank"))
        context = {"people": shown, "blank": blank, "chosen": chosen}
        return render(request, "key_accounts/_person_options.html", context)


def _profile(customer):
    rows = []
    for name in PROFILE:
        field = Customer._meta.get_field(name)
        value = getattr(customer, name)
        if field.choices and value:
            value = getattr(customer, f"get_{name}_display")()
        elif name == "account_manager" and value is not None:
            value = person_label(value)
        rows.append({"name": name, "label": field.verbose_name, "value": value})
    return rows


def _chart(months):
    """The revenue chart's data, for json_script (numbers as floats, months as "YYYY-MM")."""
    return {
        "labels": [row["month"].strftime("%Y-%m") for row in months],
        "revenue": [float(row["revenue"] or 0) for row in months],
        "arrears": [float(row["arrears"] or 0) for row in months],
    }


class CustomerDetail(CustomerPage):
    """The customer 360 page: profile, group, contacts, subscriptions, billing with the monthly
    revenue chart, the interaction timeline, satisfaction and credit."""

    model = Customer

    def get(self, request, pk):
        user = request.user
        customer = selectors.customer_get(user=user, pk=pk)
        # The group only shows when the user may open it (a city serving one branch may not).
        group = customer.group if customer.group_id and can(user, "customer.view", customer.group) else None
        members = member_count = None
        if customer.is_group:
            in_group = selectors.customers(user=user).filter(group=customer)
            members = list(in_group.select_related("org_unit").order_by("name", "id")[:MEMBERS])
            member_count = in_group.count()
        months = selectors.billing_by_month(customer)
        interactions = list(selectors.interactions_of(customer)[:TIMELINE])
        channels = {key: str(label) for key, label in Interaction.Channel.choices}
        for interaction in interactions:
            interaction.badge = CHANNEL_BADGES.get(interaction.channel, "text-bg-light border")
            interaction.channel_label = channels.get(interaction.channel, interaction.channel)
        scores = [i.satisfaction for i in interactions if i.satisfaction]
        context = {
            "customer": customer,
            "tab": "overview",
            "profile": _profile(customer),
            "group": group,
            "members": members,
            "member_count": member_count,
            "contacts": list(selectors.contacts_of(customer)),
            "subscriptions": list(selectors.subscriptions_of(customer)),
            "billing_accounts": list(selectors.billing_accounts_of(customer)),
            "months": months,
            "latest": months[-1] if months else None,
            "chart": _chart(months),
            "interactions": interactions,
            "average_satisfaction": sum(scores) / len(scores) if scores else None,
            **_permissions(user, customer),
        }
        return render(request, "key_accounts/detail.html", context)


def _permissions(user, customer):
    return {"may_change": can(user, "customer.change", customer)}


class CustomerHistory(CustomerPage):
    """The history tab: every change to the customer and what hangs off it, newest first, with
    who, when, the acting unit, the channel and each field before and after."""

    model = Customer

    def get(self, request, pk):
        customer = selectors.customer_get(user=request.user, pk=pk)
        context = {
            "customer": customer,
            "tab": "history",
            "rows": present(selectors.customer_history(customer), request.user, customer),
            **_permissions(request.user, customer),
        }
        return render(request, "key_accounts/history.html", context)


def _form(request, data=None, customer=None):
    user = request.user
    groups = selectors.customers(user=user).filter(is_group=True).order_by("name")
    if customer is None:
        units = selectors.units_where(user=user, code="customer.add")
    else:
        groups = groups.exclude(pk=customer.pk)
        if customer.group_id and not can(user, "customer.view", customer.group):
            groups = None  # a branch's city may not see its group, nor take the branch out of it
        units = selectors.units_where(user=user, code="customer.assign") if can(user, "customer.assign", customer) else None
    return CustomerForm(data, instance=customer, units=units, managers=selectors.account_managers(user=user), groups=groups)


def _require_add(user):
    if not resolve_scope(user).holds_anywhere("customer.add"):
        raise PermissionDenied(_("Your roles do not allow adding customers."))


class CustomerCreate(CustomerPage):
    model = Customer

    def get(self, request, form=None, status=200):
        _require_add(request.user)
        form = form or _form(request)
        return render(request, "key_accounts/form.html", {"form": form, "customer": None}, status=status)

    def post(self, request):
        _require_add(request.user)
        form = _form(request, request.POST)
        if not run_service(request, form, lambda d: services.customer_create(actor=request.user, data=form.service_data())):
            return self.get(request, form=form, status=form.status)
        messages.success(request, _("The customer %(name)s was created.") % {"name": form.result.name})
        return redirect("key_accounts:detail", pk=form.result.pk)


class CustomerEdit(CustomerPage):
    model = Customer

    def get(self, request, pk, form=None, status=200):
        customer = selectors.customer_get(user=request.user, pk=pk, action="change")
        form = form or _form(request, customer=customer)
        return render(request, "key_accounts/form.html", {"form": form, "customer": customer}, status=status)

    def post(self, request, pk):
        customer = selectors.customer_get(user=request.user, pk=pk, action="change")
        form = _form(request, request.POST, customer=customer)
        call = lambda d: services.customer_update(actor=request.user, customer=customer, data=form.service_data())  # noqa: E731
        if not run_service(request, form, call, announce=False):
            if form.status == 403:
                raise PermissionDenied(form.refusal)
            return self.get(request, pk, form=form, status=form.status)
        messages.success(request, _("The customer %(name)s was saved.") % {"name": form.result.name})
        return redirect("key_accounts:detail", pk=customer.pk)


urlpatterns = [
    path("", CustomerList.as_view(), name="list"),
    path("new/", CustomerCreate.as_view(), name="create"),
    path("people/", PersonOptions.as_view(), name="person-options"),
    path("<int:pk>/", CustomerDetail.as_view(), name="detail"),
    path("<int:pk>/history/", CustomerHistory.as_view(), name="history"),
    path("<int:pk>/edit/", CustomerEdit.as_view(), name="edit"),
    *_parts.urlpatterns,
]
