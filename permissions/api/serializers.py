"""Input and output shapes of the roles, users, memberships, grants and modules API."""
from django.contrib.auth import get_user_model
from rest_framework import serializers

from permissions.catalog import MODULES
from permissions.models import Membership, Role
from org_hierarchy.models import OrgUnit
from permissions import registry
from permissions.registry import GRANT_CODENAMES


def grant_action(grant):
    """The action ("view", "change", ...) an org unit grant gives, from its permission codename."""
    codenames = registry.get(OrgUnit).grant_codenames
    return next((action for action, codename in codenames.items() if codename == grant.permission.codename), "")


class RoleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Role
        fields = ["id", "code", "name", "description", "permissions", "is_builtin"]


class RoleCreateSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    permissions = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)


class RoleUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    permissions = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


class UnitRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class RoleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()


class UserMembershipSerializer(serializers.ModelSerializer):
    unit = UnitRefSerializer()
    role = RoleRefSerializer()

    class Meta:
        model = Membership
        fields = ["id", "unit", "role"]


class UserSerializer(serializers.ModelSerializer):
    """A user with the memberships the caller may see (prefetched for the whole page)."""

    memberships = UserMembershipSerializer(source="visible_memberships", many=True, read_only=True)

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "is_active", "memberships"]


class UserCreateSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    unit = serializers.IntegerField()
    role = serializers.IntegerField()


class UserCreatedSerializer(UserSerializer):
    password = serializers.CharField(help_text="Shown once: it is not stored in clear and never returned again.")

    class Meta(UserSerializer.Meta):
        fields = UserSerializer.Meta.fields + ["password"]


class MembershipSerializer(serializers.ModelSerializer):
    user = UserRefSerializer()
    unit = UnitRefSerializer()
    role = RoleRefSerializer()

    class Meta:
        model = Membership
        fields = ["id", "user", "unit", "role", "created_at"]


class MembershipCreateSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    unit = serializers.IntegerField()
    role = serializers.IntegerField()


class GrantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = UserRefSerializer()
    unit = UnitRefSerializer(source="content_object")
    action = serializers.SerializerMethodField()

    def get_action(self, grant) -> str:
        return grant_action(grant)


class GrantCreateSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    unit = serializers.IntegerField()
    action = serializers.ChoiceField(choices=sorted(GRANT_CODENAMES))


class LevelRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()


class ModuleLevelSerializer(serializers.Serializer):
    level = LevelRefSerializer()
    modules = serializers.DictField(child=serializers.BooleanField())


class ModuleSetSerializer(serializers.Serializer):
    module = serializers.ChoiceField(choices=sorted(MODULES))
    level = serializers.IntegerField()
    enabled = serializers.BooleanField()


class UnitPermissionsSerializer(serializers.Serializer):
    unit = UnitRefSerializer()
    permissions = serializers.ListField(child=serializers.CharField())
