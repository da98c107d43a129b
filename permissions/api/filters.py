"""Query-string filters of the membership and grant lists: ?unit=<id>&user=<id>."""
import django_filters

from permissions.models import Membership, OrgUnitUserObjectPermission


class MembershipFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="unit_id")
    user = django_filters.NumberFilter(field_name="user_id")

    class Meta:
        model = Membership
        fields = ["unit", "user"]


class GrantFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="content_object_id")
    user = django_filters.NumberFilter(field_name="user_id")

    class Meta:
        model = OrgUnitUserObjectPermission
        fields = ["unit", "user"]
