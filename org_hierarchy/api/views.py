"""The org tree API: levels, units and their reorganisations.

Thin views: each parses its input, calls one selector or service, and serialises. Reads go
through org_hierarchy.selectors (narrowed by the caller's scope: an id outside it answers 404);
writes through org_hierarchy.services, which check the permission at the unit (403 when the
unit is visible but the action is not allowed).
"""
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from org_hierarchy import selectors, services
from org_hierarchy.models import OrgLevel, OrgUnit
from permissions.api_permissions import ScopedPermission

from . import serializers as s
from .filters import UnitFilter


def parsed(serializer_class, data, **kwargs):
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def unit_ref(user, pk, field):
    """A unit named in a request body: unknown and invisible ids give the same field error."""
    if pk is None:
        return None
    try:
        return selectors.unit_get(user=user, pk=pk)
    except Http404:
        raise ValidationError({field: [_("Unknown unit.")]}) from None


def renamed_fields(exc, names):
    """A service's ValidationError with its field names as the API spells them."""
    if not hasattr(exc, "error_dict"):
        return exc
    return ValidationError({names.get(field, field): errors for field, errors in exc.error_dict.items()})


class LevelViewSet(viewsets.GenericViewSet):
    """Levels are tenant configuration: anyone who sees units reads them; changing them needs
    "org_unit.change" across the whole tenant (checked by the services)."""

    permission_classes = [ScopedPermission]
    resource = "org_unit"
    scoped_actions = {"create": "change", "destroy": "change"}
    queryset = OrgLevel.objects.none()
    serializer_class = s.LevelSerializer

    def _get(self, pk):
        return get_object_or_404(OrgLevel, pk=pk)

    def list(self, request):
        page = self.paginate_queryset(selectors.level_list())
        return self.get_paginated_response(s.LevelSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.LevelSerializer(self._get(pk)).data)

    @extend_schema(request=s.LevelSerializer, responses={201: s.LevelSerializer})
    def create(self, request):
        data = parsed(s.LevelSerializer, request.data)
        level = services.level_create(actor=request.user, **data)
        return Response(s.LevelSerializer(level).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.LevelUpdateSerializer, responses=s.LevelSerializer)
    def partial_update(self, request, pk=None):
        data = parsed(s.LevelUpdateSerializer, request.data)
        level = services.level_update(actor=request.user, level=self._get(pk), **data)
        return Response(s.LevelSerializer(level).data)

    @extend_schema(request=s.LevelUpdateSerializer, responses=s.LevelSerializer)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.level_delete(actor=request.user, level=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UnitViewSet(viewsets.GenericViewSet):
    permission_classes = [ScopedPermission]
    resource = "org_unit"
    scoped_actions = {"move": "change", "merge": "change", "close": "delete"}
    queryset = OrgUnit.objects.none()
    serializer_class = s.UnitSerializer
    filterset_class = UnitFilter

    def _get(self, pk):
        return selectors.unit_get(user=self.request.user, pk=pk)

    def list(self, request):
        units = self.filter_queryset(selectors.unit_list(user=request.user))
        page = self.paginate_queryset(units)
        return self.get_paginated_response(s.UnitSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.UnitSerializer(self._get(pk)).data)

    @extend_schema(request=s.UnitCreateSerializer, responses={201: s.UnitSerializer})
    def create(self, request):
        data = parsed(s.UnitCreateSerializer, request.data)
        parent = unit_ref(request.user, data.get("parent"), "parent")
        unit = services.unit_create(
            actor=request.user, code=data["code"], name=data["name"], level=data["level"], parent=parent
        )
        return Response(s.UnitSerializer(self._get(unit.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.UnitUpdateSerializer, responses=s.UnitSerializer)
    def partial_update(self, request, pk=None):
        unit = self._get(pk)
        data = parsed(s.UnitUpdateSerializer, request.data)
        services.unit_rename(actor=request.user, unit=unit, name=data["name"])
        return Response(s.UnitSerializer(self._get(pk)).data)

    @extend_schema(request=s.UnitUpdateSerializer, responses=s.UnitSerializer)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(request=s.UnitMoveSerializer, responses=s.UnitSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        unit = self._get(pk)
        data = parsed(s.UnitMoveSerializer, request.data)
        new_parent = unit_ref(request.user, data["parent"], "parent")
        try:
            services.unit_move(actor=request.user, unit=unit, new_parent=new_parent)
        except ValidationError as exc:
            raise renamed_fields(exc, {"new_parent": "parent"}) from None
        return Response(s.UnitSerializer(self._get(pk)).data)

    @extend_schema(request=s.UnitMergeSerializer, responses=s.UnitSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Fold this unit into ``survivor``; answers with the survivor."""
        source = self._get(pk)
        data = parsed(s.UnitMergeSerializer, request.data)
        survivor = unit_ref(request.user, data["survivor"], "survivor")
        survivor = services.unit_merge(actor=request.user, source=source, survivor=survivor)
        return Response(s.UnitSerializer(self._get(survivor.pk)).data)

    @extend_schema(request=None, responses=s.UnitSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        unit = services.unit_close(actor=request.user, unit=self._get(pk))
        return Response(s.UnitSerializer(self._get(unit.pk)).data)

    @extend_schema(responses=s.TreeNodeSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def tree(self, request):
        """Every open unit the caller may view, flat in tree order with parent ids: one query,
        unpaginated because the tree editor needs it whole (a tenant has a few thousand units)."""
        units = selectors.unit_list(user=request.user).select_related(None).only("id", "code", "name", "level_id", "parent_id", "depth", "is_active")
        return Response(s.TreeNodeSerializer(units, many=True).data)

    @extend_schema(responses=s.AuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None)
    def audit(self, request, pk=None):
        """Reorganisations of this unit and the units under it, newest first."""
        entries = selectors.audit_list(user=request.user, unit=self._get(pk))
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.AuditEntrySerializer(page, many=True).data)
