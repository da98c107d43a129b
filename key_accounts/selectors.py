"""Reads of the key-account archive. Every list starts from permissions.selectors.visible, so
nothing outside the user's scope (subtrees, groups they may view, direct grants) ever leaves.

The customer list, the export and every search share one filter set (key_accounts.filters),
so what a user exports is exactly the list they were looking at.
"""
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db.models import F, Sum

from permissions.selectors import AnyOf, get_visible_or_404, visible, visible_parts

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
    if not any(name in CustomerFilter.base_filters for name in params or ()):
        # Nothing to filter or order by (a plain list page): newest first, without building the
        # filter set and its form (a few ms of CPU a request).
        result = queryset.order_by("-id")
        result._kam_unfiltered = (user, action)
        return result
    filterset = CustomerFilter(params or {}, queryset=queryset, user=user)
    if not filterset.is_valid():
        raise ValidationError({name: [str(message) for message in messages] for name, messages in filterset.errors.items()})
    result = filterset.qs
    if not filterset.narrows():
        # customer_count may count the scope part by part. An attribute of this queryset only:
        # any further filter() clones it without the attribute.
        result._kam_unfiltered = (user, action)
    return result


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
    # The matching ids as an array the statement reads first (an InitPlan), then probes the
    # primary key with: "id IN (subquery) ORDER BY id DESC" walks every customer newest first
    # down to the match instead (seconds for an old customer among a million).
    matching = ArraySubquery(PhoneNumber.objects.filter(reversed_digits__startswith=key).order_by().values("customer_id"))
    return (customers(user=user).filter(AnyOf(F("pk"), matching)).select_related("org_unit", "account_manager")
            .order_by("-id")[:limit])


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

    unfiltered = getattr(queryset, "_kam_unfiltered", None)
    if unfiltered is not None:
        queryset = _scope_total(*unfiltered)
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


# A narrowed list with up to this many matches is read in one pass (ids, and the rank when
# searching: ~20,000 pairs cost a few ms to fetch); more are counted (cached when large) and
# paged by the database.
SCAN_LIMIT = 20_000


class CustomerPages:
    """The total and the pages of a customer_list queryset for a paginator, as dicts of
    ``fields`` (``values()``: no model instances) or as customers.

    A narrowed list (a search, a filter) newest first or best match first reads its matches
    once, in no order, with their rank when searching (the trigram or phone index runs once,
    and the total is their number); up to RANK_LIMIT are ranked, more listed newest first, and
    a page is then its 50 rows by id. Over SCAN_LIMIT matches, and for other orderings, the
    total is counted (customer_count: cached when large) and the page read in order, newest
    first above RANK_LIMIT (without_ranking). An unfiltered list counts and pages the scope part
    by part (customer_count, customer_page)."""

    def __init__(self, queryset, fields=None):
        from .filters import RANK_LIMIT, without_ranking

        self.queryset = queryset
        self.fields = fields
        self.ids = None
        order = tuple(queryset.query.order_by)
        ranked = order == ("-search_rank", "-id")
        if getattr(queryset, "_kam_unfiltered", None) is None and (ranked or order == ("-id",)):
            columns = ("pk", "rank") if ranked else ("pk",)
            scan = queryset.order_by()
            if ranked:
                scan = scan.annotate(rank=F("search_rank"))
            found = list(scan.values_list(*columns)[:SCAN_LIMIT + 1])
            if len(found) <= SCAN_LIMIT:
                # The database's own order: rank (real) descending, then id descending.
                key = (lambda row: (-row[1], -row[0])) if ranked and len(found) <= RANK_LIMIT else (lambda row: -row[0])
                self.ids = [row[0] for row in sorted(found, key=key)]
        self.count = len(self.ids) if self.ids is not None else customer_count(queryset)
        if self.count > RANK_LIMIT:
            self.queryset = without_ranking(queryset)

    def rows(self, start, stop):
        if self.ids is None:
            page = customer_page(self.queryset, start, stop, total=self.count)
            return list(page.values(*self.fields) if self.fields else page)
        ids = self.ids[start:stop]
        rows = Customer.objects.filter(AnyOf(F("pk"), ids)).order_by()
        if self.fields:
            rows = rows.values(*self.fields)
            place = {pk: n for n, pk in enumerate(ids)}
            return sorted(rows, key=lambda row: place[row["id"]])
        rows.query.select_related = self.queryset.query.select_related
        place = {pk: n for n, pk in enumerate(ids)}
        return sorted(rows, key=lambda row: place[row.pk])


# The deferred join of customer_page pays off for a page this deep in a scope this small (at
# 1M customers, a city of 12,000 customers: page 5 19 ms -> 7 ms, page 1 6 ms -> 10 ms; a
# province of 35,000-60,000: slower on every page, sorting all its ids).
DEFERRED_FROM_ROW = 100
DEFERRED_MAX_TOTAL = 20_000


def customer_page(queryset, start, stop, total=None):
    """Rows ``start:stop`` of a customer_list queryset (a queryset still). Newest first,
    unfiltered, deep enough into a small enough scope (``total``), the page's ids come first
    from the scope's parts (an index-only scan of unit and id each, and a sort of the ids), then
    its rows by id: the plain query walks the whole table newest first and skips the rows of
    other units, further for every page."""
    unfiltered = getattr(queryset, "_kam_unfiltered", None)
    if (unfiltered is None or tuple(queryset.query.order_by) != ("-id",) or start < DEFERRED_FROM_ROW
            or total is None or total > DEFERRED_MAX_TOTAL):
        return queryset[start:stop]
    parts = visible_parts(unfiltered[0], Customer.objects.all(), action=unfiltered[1])
    if not parts or len(parts) == 1:
        return queryset[start:stop]  # every customer (or none): the primary key backwards
    first, *rest = [Customer.objects.filter(part).order_by().values("pk") for part in parts]
    ids = (first.union(*rest, all=True) if rest else first).order_by("-pk")[start:stop]
    rows = Customer.objects.filter(AnyOf(F("pk"), ArraySubquery(ids))).order_by("-id")
    rows.query.select_related = queryset.query.select_related
    return rows


def _scope_total(user, action):
    """A query counting every customer ``user`` may ``action``: the scope's own customers, the
    granted ones outside it and the group members outside both, as a UNION ALL of ids, each
    arm an index-only scan (one "units OR groups" count is a bitmap scan of the table's pages:
    206 ms against 10 ms for a province at 1M customers)."""
    parts = visible_parts(user, Customer.objects.all(), action=action)
    if parts is None:
        return Customer.objects.all()
    if not parts:
        return Customer.objects.none()
    first, *rest = [Customer.objects.filter(part).order_by().values("pk") for part in parts]
    return first.union(*rest, all=True) if rest else first


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
