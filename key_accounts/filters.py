"""The customer filters (R8), shared by the list API, the list page and exports.

``q`` searches name (substring and fuzzy, Chinese included, through the pg_trgm index on
UPPER(name)), credit code, external id and phone numbers (by suffix, any format) at once; the
other parameters narrow by one attribute each. ``unit`` means the unit's whole subtree.
"""
import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from org_hierarchy.models import OrgUnit

from . import phones
from .models import Customer, Grade, Industry, PhoneNumber


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label=_("Search"))
    name = django_filters.CharFilter(method="filter_name", label=_("Name"))
    phone = django_filters.CharFilter(method="filter_phone", label=_("Phone"))
    credit_code = django_filters.CharFilter(method="filter_credit_code", label=_("Credit code"))
    kind = django_filters.MultipleChoiceFilter(choices=Customer.Kind.choices, label=_("Type"))
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices, label=_("Grade"))
    status = django_filters.MultipleChoiceFilter(choices=Customer.Status.choices, label=_("Status"))
    industry = django_filters.MultipleChoiceFilter(choices=Industry.choices, label=_("Industry"))
    unit = django_filters.NumberFilter(method="filter_unit", label=_("Region"))
    manager = django_filters.NumberFilter(field_name="account_manager_id", label=_("Account manager"))
    group = django_filters.NumberFilter(field_name="group_id", label=_("Group"))
    national = django_filters.BooleanFilter(field_name="is_national_key_account", label=_("National key account"))
    potential = django_filters.BooleanFilter(field_name="is_potential_key_account", label=_("Potential key account"))
    ordering = django_filters.OrderingFilter(
        fields=(("name", "name"), ("grade", "grade"), ("status", "status"), ("created_at", "created"),
                ("updated_at", "updated"), ("id", "id")),
        label=_("Sort"),
    )

    class Meta:
        model = Customer
        fields = []

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    @property
    def qs(self):
        queryset = super().qs
        # Newest first unless asked otherwise; id breaks ties so pages never overlap.
        if not self.form.cleaned_data.get("ordering"):
            return queryset.order_by("-id")
        return queryset.order_by(*queryset.query.order_by, "-id")

    def filter_name(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(name__icontains=value)

    def filter_credit_code(self, queryset, name, value):
        value = value.strip().upper()
        return queryset.filter(credit_code__startswith=value) if value else queryset

    def filter_phone(self, queryset, name, value):
        key = phones.search_key(value)
        if not key:
            return queryset.none() if value.strip() else queryset
        return queryset.filter(pk__in=PhoneNumber.objects.filter(reversed_digits__startswith=key).values("customer_id"))

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        condition = Q(name__icontains=value) | Q(external_id=value) | Q(credit_code=value.upper())
        key = phones.search_key(value)
        if key and len(phones.normalize(value)) >= 4 and value.replace(" ", "").replace("-", "").lstrip("+").isdigit():
            condition |= Q(pk__in=PhoneNumber.objects.filter(reversed_digits__startswith=key).values("customer_id"))
        return queryset.filter(condition)

    def filter_unit(self, queryset, name, value):
        unit = OrgUnit.objects.filter(pk=value).only("path").first()
        if unit is None:
            return queryset.none()
        return queryset.filter(org_unit__path__startswith=unit.path)
