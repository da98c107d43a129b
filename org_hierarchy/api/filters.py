"""Query-string filters of the unit list: ?parent=<id>&level=<id>&q=<text>."""
import django_filters
from django.db.models import Q

from org_hierarchy.models import OrgUnit


class UnitFilter(django_filters.FilterSet):
    parent = django_filters.NumberFilter(field_name="parent_id")
    level = django_filters.NumberFilter(field_name="level_id")
    q = django_filters.CharFilter(method="search", max_length=200)

    class Meta:
        model = OrgUnit
        fields = ["parent", "level", "q"]

    def search(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(name__icontains=value) | Q(code__icontains=value)) if value else queryset
