"""Reads of the key-account archive. Every list starts from permissions.selectors.visible, so
nothing outside the user's scope (subtrees, groups they may view, direct grants) ever leaves.

The customer list, the export and every search share one filter set (key_accounts.filters),
so what a user exports is exactly the list they were looking at.
"""
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db.models import Sum

from permissions.selectors import get_visible_or_404, visible

from . import phones
from .models import BillingRecord, Customer, PhoneNumber


def customers(*, user, action="view"):
    """Every customer ``user`` may ``action``, unordered and unfiltered."""
    return visible(user, Customer.objects.all(), action=action)


def customer_list(*, user, params=None, action="view"):
    """The customers ``user`` may ``action``, filtered, searched and ordered by ``params`` (a
    QueryDict or dict as in key_accounts.filters.CustomerFilter). Invalid filter values raise
    ValidationError naming the parameter."""
    from .filters import CustomerFilter

    queryset = customers(user=user, action=action).select_related("org_unit", "account_manager")
    filterset = CustomerFilter(params or {}, queryset=queryset, user=user)
    if not filterset.is_valid():
        raise ValidationError({name: [str(message) for message in messages] for name, messages in filterset.errors.items()})
    return filterset.qs


def customer_get(*, user, pk, action="view"):
    """One customer by id: Http404 when missing or not visible, PermissionDenied when visible
    but ``action`` is not allowed."""
    queryset = Customer.objects.select_related("org_unit", "account_manager", "group")
    return get_visible_or_404(user, queryset, pk, action=action)


def customer_history(customer):
    """The customer's changes, newest first, each ``{"at", "label", "actor", "unit", "via",
    "changes": {field: [before, after]}}``; the caller has checked access to ``customer``."""
    from .history import changes_of

    return changes_of(customer)



# --- Around one customer: the caller has checked access to ``customer`` ------------------

def contacts_of(customer):
    return customer.contacts.all()


def subscriptions_of(customer):
    return customer.subscriptions.select_related("product")


def billing_accounts_of(customer):
    return customer.billing_accounts.all()


def interactions_of(customer):
    """The timeline: every channel, newest first."""
    return customer.interactions.select_related("contact", "recorded_by")


def billing_by_month(customer, months=12):
    """``[{"month", "revenue", "usage", "arrears", "discount"}]`` summed over the customer's
    billing accounts, the latest ``months`` months, oldest first (for the revenue chart)."""
    rows = (
        BillingRecord.objects.filter(customer=customer)
        .values("month")
        .annotate(revenue=Sum("revenue"), usage=Sum("usage"), arrears=Sum("arrears"), discount=Sum("discount"))
        .order_by("-month")[:months]
    )
    return list(reversed(rows))


def caller_id(*, user, number, limit=20):
    """Customer cards for a calling number (R24): customers the user may view with that number
    among their phones (main phone or a contact's), matched on the national digits' suffix, so
    "+86 138-0013-8000", "13800138000" and a landline without its area code all find them."""
    key = phones.search_key(number)
    if not key:
        return Customer.objects.none()
    matching = PhoneNumber.objects.filter(reversed_digits__startswith=key).values("customer_id")
    return customers(user=user).filter(pk__in=matching).select_related("org_unit", "account_manager").order_by("-id")[:limit]


def customer_part_get(*, user, model, pk, action="view"):
    """A contact, subscription, billing account or interaction by id, with its customer loaded:
    Http404 when missing or when ``user`` may not view its customer, PermissionDenied when they
    may view it but not ``action`` it (so ids of other scopes' records cannot be probed)."""
    from django.http import Http404

    customer_id = model.objects.filter(pk=pk).values_list("customer_id", flat=True).first() if str(pk).isdigit() else None
    if customer_id is None:
        raise Http404
    customer = customer_get(user=user, pk=customer_id, action=action)
    part = model.objects.get(pk=pk)
    part.customer = customer
    return part


def units_where(*, user, code):
    """The open units where ``user`` holds ``code`` ("customer.add", "customer.assign"), in tree
    order: the unit choices of the customer forms."""
    from org_hierarchy.models import OrgUnit
    from permissions.scope import resolve_scope

    units = OrgUnit.objects.filter(is_active=True).select_related("level").order_by("path")
    scope = resolve_scope(user)
    return units if scope.covers_every_unit(code) else units.filter(pk__in=sorted(scope.units(code)))


def account_managers(*, user):
    """The people ``user`` may name as account manager or filter the list by: active users with
    a membership at a unit of their "customer.view" scope (everyone with a membership, for
    holders of the whole tree)."""
    from django.contrib.auth import get_user_model

    from permissions.models import Membership
    from permissions.scope import resolve_scope

    scope = resolve_scope(user)
    memberships = Membership.objects.all()
    if not scope.covers_every_unit("customer.view"):
        memberships = memberships.filter(unit_id__in=sorted(scope.units("customer.view")))
    return get_user_model().objects.filter(is_active=True, pk__in=memberships.values("user_id")).order_by("username")


# Totals above this many customers are cached for COUNT_TTL seconds: counting a million rows
# takes ~100 ms, and a total that large lagging a write by a minute misleads nobody. Smaller
# totals are counted every time, so a customer just added shows at once.
COUNT_CACHE_MIN = 10_000
COUNT_TTL = 60


def customer_count(queryset):
    """``queryset.count()``, served from the cache when it was large a moment ago. The key is
    the query's SQL and parameters (scope ids included) under the tenant's cache prefix, so
    two users share a cached total only when they see exactly the same rows."""
    import hashlib

    from django.core.cache import cache

    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (an empty id list): no query at all
        return 0
    key = "ka:count:" + hashlib.sha256(repr((sql, params)).encode()).hexdigest()
    total = cache.get(key)
    if total is None:
        total = queryset.count()
        if total >= COUNT_CACHE_MIN:
            cache.set(key, total, COUNT_TTL)
    return total


def caller_id_contacts(customers, number):
    """``{customer id: [contact names]}``: the contacts of ``customers`` (already narrowed by
    caller_id) whose phones end in ``number``'s digits, for the caller-ID cards (one query)."""
    key = phones.search_key(number)
    ids = [customer.pk for customer in customers]
    names = {}
    if key and ids:
        rows = (
            PhoneNumber.objects.filter(reversed_digits__startswith=key, customer_id__in=ids, contact__isnull=False)
            .order_by("contact__name").values_list("customer_id", "contact__name")
        )
        for customer_id, name in rows:
            if name not in names.setdefault(customer_id, []):
                names[customer_id].append(name)
    return names


def product_list():
    """The tenant's product catalogue: every user of the tenant may read it."""
    from .models import Product

    return Product.objects.order_by("code")


def grading_rule_list():
    """The tenant's grading rules, highest grade first (readable by customer.view holders)."""
    from django.db.models import Case, IntegerField, Value, When

    from .models import Grade, GradingRule

    rank = Case(*[When(grade=grade, then=Value(i)) for i, grade in enumerate(Grade.values)], output_field=IntegerField())
    return GradingRule.objects.order_by(rank)
