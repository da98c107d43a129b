"""The roles, users, memberships, object grants and module toggles API, plus the caller's own
resolved scope and the action catalogue.

Thin views: parse, call one selector or service from permissions/, serialise. Lists come from
the selectors, already narrowed to the caller's scope; an id outside it answers 404, and the
services answer 403 where the caller sees the object but may not do the action.
"""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from kam.api.pagination import PagePagination
from org_hierarchy.api.views import parsed, unit_ref
from org_hierarchy.selectors import level_get, level_list
from org_hierarchy.models import OrgLevel, OrgUnit
from permissions import selectors, services
from permissions.api_permissions import ScopedPermission
from permissions.catalog import ALL_PERMISSIONS, MODULES, RESOURCES
from permissions.models import Membership, OrgUnitUserObjectPermission, Role
from permissions import registry
from permissions.scope import resolve_scope

from . import serializers as s
from .filters import GrantFilter, MembershipFilter
from .serializers import grant_action


def _ref(getter, user, pk, field, message):
    try:
        return getter(user=user, pk=pk)
    except Http404:
        raise ValidationError({field: [message]}) from None


def role_ref(user, pk):
    return _ref(selectors.role_get, user, pk, "role", _("Unknown role."))


def user_ref(user, pk):
    return _ref(selectors.user_get, user, pk, "user", _("Unknown user."))


def level_ref(pk):
    level = level_get(pk)
    if level is None:
        raise ValidationError({"level": [_("Unknown level.")]})
    return level


class CatalogView(APIView):
    """What a role can hold: resources with their actions, and the modules a level can switch off."""

    @extend_schema(responses=inline_serializer("Catalog", {
        "resources": serializers.ListField(), "actions": serializers.ListField(), "modules": serializers.ListField(),
        "permissions": serializers.ListField(),
    }))
    def get(self, request):
        actions = list(dict.fromkeys(a for _label, acts in RESOURCES.values() for a in acts))
        return Response({
            "resources": [
                {"code": code, "label": str(label), "actions": list(acts)} for code, (label, acts) in RESOURCES.items()
            ],
            "actions": actions,
            "modules": [{"code": code, "label": str(label)} for code, label in MODULES.items()],
            "permissions": list(ALL_PERMISSIONS),
        })


class RoleViewSet(viewsets.GenericViewSet):
    permission_classes = [ScopedPermission]
    resource = "role"
    queryset = Role.objects.none()
    serializer_class = s.RoleSerializer

    def _get(self, pk):
        return selectors.role_get(user=self.request.user, pk=pk)

    def list(self, request):
        page = self.paginate_queryset(selectors.role_list(user=request.user).order_by("name", "pk"))
        return self.get_paginated_response(s.RoleSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.RoleSerializer(self._get(pk)).data)

    @extend_schema(request=s.RoleCreateSerializer, responses={201: s.RoleSerializer})
    def create(self, request):
        role = services.role_create(actor=request.user, **parsed(s.RoleCreateSerializer, request.data))
        return Response(s.RoleSerializer(role).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RoleUpdateSerializer, responses=s.RoleSerializer)
    def partial_update(self, request, pk=None):
        role = self._get(pk)
        role = services.role_update(actor=request.user, role=role, **parsed(s.RoleUpdateSerializer, request.data))
        return Response(s.RoleSerializer(role).data)

    @extend_schema(request=s.RoleUpdateSerializer, responses=s.RoleSerializer)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.role_delete(actor=request.user, role=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserViewSet(viewsets.GenericViewSet):
    """Users with a membership in the caller's "user.view" scope, each with the memberships the
    caller may see (one prefetch for the whole page)."""

    permission_classes = [ScopedPermission]
    resource = "user"
    scoped_actions = {"deactivate": "delete", "activate": "change"}
    serializer_class = s.UserSerializer
    queryset = get_user_model().objects.none()

    def _with_memberships(self, user):
        user.visible_memberships = list(selectors.membership_list(user=self.request.user, member=user))
        return user

    def _get(self, pk):
        return selectors.user_get(user=self.request.user, pk=pk)

    def list(self, request):
        memberships = Prefetch(
            "memberships", queryset=selectors.membership_list(user=request.user), to_attr="visible_memberships"
        )
        users = selectors.user_list(user=request.user).order_by("username").prefetch_related(memberships)
        page = self.paginate_queryset(users)
        return self.get_paginated_response(s.UserSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.UserSerializer(self._with_memberships(self._get(pk))).data)

    @extend_schema(request=s.UserCreateSerializer, responses={201: s.UserCreatedSerializer})
    def create(self, request):
        data = parsed(s.UserCreateSerializer, request.data)
        unit = unit_ref(request.user, data["unit"], "unit")
        role = role_ref(request.user, data["role"])
        user, password = services.user_create(
            actor=request.user, email=data["email"], first_name=data["first_name"], last_name=data["last_name"],
            unit=unit, role=role,
        )
        body = s.UserSerializer(self._with_memberships(user)).data | {"password": password}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.UserSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        user = services.user_deactivate(actor=request.user, user=self._get(pk))
        return Response(s.UserSerializer(self._with_memberships(user)).data)

    @extend_schema(request=None, responses=s.UserSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        user = services.user_activate(actor=request.user, user=self._get(pk))
        return Response(s.UserSerializer(self._with_memberships(user)).data)


class MembershipViewSet(viewsets.GenericViewSet):
    permission_classes = [ScopedPermission]
    resource = "membership"
    queryset = Membership.objects.none()
    serializer_class = s.MembershipSerializer
    filterset_class = MembershipFilter

    def _get(self, pk):
        try:
            return selectors.membership_list(user=self.request.user).get(pk=pk)
        except (Membership.DoesNotExist, ValueError, TypeError):
            raise Http404 from None

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(selectors.membership_list(user=request.user)))
        return self.get_paginated_response(s.MembershipSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.MembershipSerializer(self._get(pk)).data)

    @extend_schema(request=s.MembershipCreateSerializer, responses={201: s.MembershipSerializer})
    def create(self, request):
        data = parsed(s.MembershipCreateSerializer, request.data)
        membership = services.membership_add(
            actor=request.user,
            user=user_ref(request.user, data["user"]),
            unit=unit_ref(request.user, data["unit"], "unit"),
            role=role_ref(request.user, data["role"]),
        )
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.membership_remove(actor=request.user, membership=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class GrantViewSet(viewsets.GenericViewSet):
    """Object grants on org units: one action on one unit (not its subtree) for one user."""

    permission_classes = [ScopedPermission]
    resource = "object_grant"
    queryset = OrgUnitUserObjectPermission.objects.none()
    serializer_class = s.GrantSerializer
    filterset_class = GrantFilter

    def _get(self, pk):
        try:
            return selectors.grant_list(user=self.request.user).get(pk=pk)
        except (OrgUnitUserObjectPermission.DoesNotExist, ValueError, TypeError):
            raise Http404 from None

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(selectors.grant_list(user=request.user)))
        return self.get_paginated_response(s.GrantSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.GrantSerializer(self._get(pk)).data)

    @extend_schema(request=s.GrantCreateSerializer, responses={201: s.GrantSerializer})
    def create(self, request):
        data = parsed(s.GrantCreateSerializer, request.data)
        grant = services.grant_add(
            actor=request.user,
            user=user_ref(request.user, data["user"]),
            obj=unit_ref(request.user, data["unit"], "unit"),
            action=data["action"],
        )
        return Response(s.GrantSerializer(self._get(grant.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        grant = self._get(pk)
        services.grant_remove(actor=request.user, user=grant.user, obj=grant.content_object, action=grant_action(grant))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModuleViewSet(viewsets.GenericViewSet):
    """Which modules each level uses: one row per level, every module on unless switched off."""

    permission_classes = [ScopedPermission]
    resource = "module"
    scoped_actions = {"create": "change"}
    queryset = OrgLevel.objects.none()
    serializer_class = s.ModuleLevelSerializer

    def list(self, request):
        page = self.paginate_queryset(level_list())
        off = {
            (t.level_id, t.module)
            for t in selectors.module_toggle_list(user=request.user).filter(level__in=[level.pk for level in page])
        }
        rows = [
            {"level": level, "modules": {module: (level.pk, module) not in off for module in MODULES}} for level in page
        ]
        return self.get_paginated_response(s.ModuleLevelSerializer(rows, many=True).data)

    @extend_schema(request=s.ModuleSetSerializer, responses=s.ModuleLevelSerializer)
    def create(self, request):
        data = parsed(s.ModuleSetSerializer, request.data)
        level = level_ref(data["level"])
        services.module_set(actor=request.user, module=data["module"], level=level, enabled=data["enabled"])
        off = set(selectors.module_toggle_list(user=request.user).filter(level=level, enabled=False).values_list("module", flat=True))
        row = {"level": level, "modules": {module: module not in off for module in MODULES}}
        return Response(s.ModuleLevelSerializer(row).data)


class MyScopeView(APIView):
    """The caller's resolved permissions per unit (roles on subtrees plus direct grants), in tree
    order, and the modules they use: what the UI asks before showing a button."""

    pagination_class = PagePagination

    @extend_schema(responses=s.UnitPermissionsSerializer(many=True))
    def get(self, request):
        codes_by_unit = _codes_by_unit(request.user)
        units = OrgUnit.objects.filter(pk__in=codes_by_unit).order_by("path").only("id", "code", "name")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(units, request, view=self)
        rows = [{"unit": unit, "permissions": codes_by_unit[unit.pk]} for unit in page]
        response = paginator.get_paginated_response(s.UnitPermissionsSerializer(rows, many=True).data)
        scope = resolve_scope(request.user)
        response.data["is_superuser"] = scope.is_superuser
        response.data["modules"] = {module: scope.module_enabled(module) for module in MODULES}
        return response


def _codes_by_unit(user):
    """``{unit id: [codes]}`` from the user's scope and their direct grants on units, codes in
    catalogue order."""
    scope = resolve_scope(user)
    held = {}
    for code in ALL_PERMISSIONS:
        for unit_id in scope.units(code):
            held.setdefault(unit_id, set()).add(code)
    if not scope.is_superuser:
        for grant_action_name in registry.get(OrgUnit).grant_codenames:
            for unit_id in selectors.grant_ids(user, OrgUnit, grant_action_name):
                held.setdefault(unit_id, set()).add(f"org_unit.{grant_action_name}")
    order = {code: i for i, code in enumerate(ALL_PERMISSIONS)}
    return {unit_id: sorted(codes, key=order.__getitem__) for unit_id, codes in held.items()}
