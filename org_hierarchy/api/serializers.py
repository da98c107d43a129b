"""Input and output shapes of the org tree API. No business rules: the services check them."""
from rest_framework import serializers

from org_hierarchy.models import OrgAuditEntry, OrgLevel, OrgUnit


class LevelSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrgLevel
        fields = ["id", "code", "name", "rank"]


class LevelUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    rank = serializers.IntegerField(min_value=0, required=False)


class UnitSerializer(serializers.ModelSerializer):
    """One unit; ``level`` is inlined from a select_related join, so a page costs one query."""

    level = LevelSerializer(read_only=True)

    class Meta:
        model = OrgUnit
        fields = ["id", "code", "name", "level", "parent", "depth", "numchild", "is_active", "closed_at"]


class TreeNodeSerializer(serializers.ModelSerializer):
    """A flat tree row: the editor nests rows by ``parent`` (a row whose parent is not in the list is a root)."""

    level = serializers.IntegerField(source="level_id")
    parent = serializers.IntegerField(source="parent_id", allow_null=True)

    class Meta:
        model = OrgUnit
        fields = ["id", "code", "name", "level", "parent", "depth", "is_active"]


class UnitCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    level = serializers.IntegerField()
    parent = serializers.IntegerField(required=False, allow_null=True)


class UnitUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class UnitMoveSerializer(serializers.Serializer):
    parent = serializers.IntegerField()


class UnitMergeSerializer(serializers.Serializer):
    survivor = serializers.IntegerField()


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    unit = serializers.IntegerField(source="unit_id", allow_null=True)

    class Meta:
        model = OrgAuditEntry
        fields = ["id", "at", "actor", "action", "unit", "unit_code", "detail"]
