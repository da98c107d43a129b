"""The customer filters (R8), shared by the list API, the list page and exports.

``q`` is the one search box: a name (Chinese substring, or fuzzy: pg_trgm similarity), a credit
code or external id (exact), or a phone number in any format (by suffix). ``name`` searches
names only, the same way. With ``q`` or ``name`` and no ``ordering`` the best matches come first.
The other parameters narrow by one attribute each; ``unit`` means the unit's whole subtree.

Every name condition is written on ``UPPER(name)``, the expression the GIN trigram index
``ka_customer_name_trgm`` is built on, so ``LIKE '%x%'`` (three characters and more) and the
similarity operator ``%`` are index scans; phones go through ``PhoneNumber.reversed_digits``.
"""
import re

import django_filters
from django.contrib.postgres.search import TrigramSimilarity
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, Exists, F, IntegerField, Q, Value, When
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from org_hierarchy.models import OrgUnit
from permissions.selectors import AnyOf

from . import phones
from .models import Customer, Grade, Industry, PhoneNumber

# pg_trgm cannot take a trigram out of fewer than three characters: shorter names are
# matched as substrings only (a scan over the caller's scope, see docs/key-accounts.md).
FUZZY_MIN_CHARS = 3
PHONE_LIKE = re.compile(r"^[+＋]?[\d０-９][\d０-９ \-()（）]*$")
PHONE_MIN_DIGITS = 4  # "8000" finds the numbers ending in it; fewer digits match too much
RANK_LIMIT = 5000  # more matches than this are listed newest first (see without_ranking)
GRADE_RANK = {Grade.STRATEGIC: 0, Grade.A: 1, Grade.B: 2, Grade.C: 3}


def name_search(queryset, value):
    """``queryset`` narrowed to names containing ``value``; when none does (a typo, a word
    missing), to names similar to it (three characters and more, pg_trgm's ``%``).

    The fuzzy arm sits behind an uncorrelated NOT EXISTS, which PostgreSQL runs once as a
    one-time filter: when the substring finds something, the costly similarity scan never
    starts."""
    contains = Q(name__icontains=value)  # UPPER(name::text) LIKE UPPER('%value%')
    if len(value) < FUZZY_MIN_CHARS:
        return queryset.filter(contains)
    return queryset.filter(pk__in=_name_ids(queryset, value))


def _name_ids(queryset, value, *extra):
    """A UNION ALL of id subqueries: substring matches, fuzzy matches when there is no substring
    match in ``queryset`` (the caller's scope), and ``extra`` (more id subqueries)."""
    contains = Q(name__icontains=value)
    arms = [Customer.objects.filter(contains).values("pk"), *extra]
    if len(value) >= FUZZY_MIN_CHARS:
        similar = (
            Customer.objects.alias(name_upper=Upper("name"))
            .filter(name_upper__trigram_similar=Upper(Value(value)))
            .filter(~Exists(queryset.filter(contains)))
            .values("pk")
        )
        arms.append(similar)
    first, *rest = arms
    return first.union(*rest, all=True) if rest else first


def without_ranking(queryset):
    """``queryset`` newest first instead of best match first. Ranking sorts every match, which
    only pays for a few thousand: callers drop it above RANK_LIMIT matches."""
    if queryset.query.order_by[:1] == ("-search_rank",):
        return queryset.order_by("-id")
    return queryset


def phone_customers(value):
    """Ids (a subquery) of the customers with a phone ending in ``value``'s digits."""
    key = phones.search_key(value)
    return PhoneNumber.objects.filter(reversed_digits__startswith=key).values("customer_id") if key else None


def _among_ids(ids):
    """``id = ANY(ARRAY(ids))``: the matching ids are read first (an InitPlan) and the customers
    fetched by primary key. ``id IN (ids)`` lets PostgreSQL walk the whole table newest first
    instead when it expects many matches and there are few (one phone number: seconds at 1M)."""
    return Q(AnyOf(F("pk"), ArraySubquery(ids)))


def looks_like_phone(value):
    return bool(PHONE_LIKE.match(value)) and len(phones.normalize(value)) >= PHONE_MIN_DIGITS


class CustomerOrdering(django_filters.OrderingFilter):
    """Sort keys; ``grade`` sorts by rank (strategic, A, B, C; ``-grade`` the other way), not
    alphabetically."""

    def filter(self, qs, value):
        if value and any(param.lstrip("-") == "grade" for param in value):
            qs = qs.alias(grade_rank=Case(*[When(grade=g, then=Value(r)) for g, r in GRADE_RANK.items()],
                                          default=Value(9), output_field=IntegerField()))
        return super().filter(qs, value)


class CustomerFilter(django_filters.FilterSet):
    # Multiple-choice filters use distinct=False: they filter the customer table itself (no join
    # that could repeat a row), and DISTINCT would sort every match before the first page.
    q = django_filters.CharFilter(method="filter_q", label=_("Search"), max_length=200)
    name = django_filters.CharFilter(method="filter_name", label=_("Name"), max_length=200)
    phone = django_filters.CharFilter(method="filter_phone", label=_("Phone"), max_length=40)
    credit_code = django_filters.CharFilter(method="filter_credit_code", label=_("Credit code"), max_length=18)
    kind = django_filters.MultipleChoiceFilter(choices=Customer.Kind.choices, distinct=False, label=_("Type"))
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices, distinct=False, label=_("Grade"))
    status = django_filters.MultipleChoiceFilter(choices=Customer.Status.choices, distinct=False, label=_("Status"))
    industry = django_filters.MultipleChoiceFilter(choices=Industry.choices, distinct=False, label=_("Industry"))
    unit = django_filters.NumberFilter(method="filter_unit", label=_("Region"))
    manager = django_filters.NumberFilter(field_name="account_manager_id", label=_("Account manager"))
    group = django_filters.NumberFilter(field_name="group_id", label=_("Group"))
    national = django_filters.BooleanFilter(field_name="is_national_key_account", label=_("National key account"))
    potential = django_filters.BooleanFilter(field_name="is_potential_key_account", label=_("Potential key account"))
    ordering = CustomerOrdering(
        fields=(("name", "name"), ("grade_rank", "grade"), ("status", "status"), ("created_at", "created"),
                ("updated_at", "updated"), ("id", "id")),
        label=_("Sort"),
    )

    class Meta:
        model = Customer
        fields = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def filter_queryset(self, queryset):
        # The name conditions and the ranking are written on UPPER(name), the indexed expression.
        return super().filter_queryset(queryset.alias(name_upper=Upper("name")))

    @property
    def qs(self):
        queryset = super().qs
        if self.form.cleaned_data.get("ordering"):
            return queryset.order_by(*queryset.query.order_by, "-id")  # id breaks ties: pages never overlap
        search = self._search_text()
        if len(search) >= FUZZY_MIN_CHARS:
            # Best match first: the closer a name is to the text as a whole, the higher it ranks.
            queryset = queryset.alias(search_rank=TrigramSimilarity("name_upper", Upper(Value(search))))
            return queryset.order_by("-search_rank", "-id")
        return queryset.order_by("-id")  # newest first

    def narrows(self):
        """Does any parameter narrow the list (ordering does not)?"""
        return any(value not in (None, "", [], ()) for name, value in self.form.cleaned_data.items() if name != "ordering")

    def _search_text(self):
        data = self.form.cleaned_data
        for name in ("q", "name"):
            value = (data.get(name) or "").strip()
            if value and not (name == "q" and looks_like_phone(value)):
                return value
        return ""

    def filter_name(self, queryset, name, value):
        value = value.strip()
        return name_search(queryset, value) if value else queryset

    def filter_credit_code(self, queryset, name, value):
        value = value.strip().upper()
        return queryset.filter(credit_code__startswith=value) if value else queryset

    def filter_phone(self, queryset, name, value):
        matching = phone_customers(value)
        if matching is None:
            return queryset.none() if value.strip() else queryset
        return queryset.filter(_among_ids(matching))

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # Every arm is its own index scan, joined as a UNION ALL of ids: an OR across a name,
        # a code and a phone subquery would make PostgreSQL filter the whole table instead.
        codes = Q(external_id=value) | Q(credit_code=value.upper())
        if looks_like_phone(value):
            # A number: its phones by suffix, or a code typed in digits.
            return queryset.filter(_among_ids(Customer.objects.filter(codes).values("pk").union(phone_customers(value), all=True)))
        if len(value) < FUZZY_MIN_CHARS:
            # No trigram index to use: one pass that can stop at the first page, newest first.
            return queryset.filter(Q(name__icontains=value) | codes)
        return queryset.filter(pk__in=_name_ids(queryset, value, Customer.objects.filter(codes).values("pk")))

    def filter_unit(self, queryset, name, value):
        unit = OrgUnit.objects.filter(pk=value).only("path").first()
        if unit is None:
            return queryset.none()
        return queryset.filter(org_unit__path__startswith=unit.path)
