"""Platform staff's tenant API, served on the public host only (kam.urls_public)."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from tenants import services
from tenants.models import Tenant


class TenantOutputSerializer(serializers.ModelSerializer):
    domains = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["slug", "name", "status", "schema_name", "created_at", "suspended_at", "domains"]

    def get_domains(self, tenant) -> list[str]:
        return [d.domain for d in tenant.domains.all()]


class TenantCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200)
    admin_email = serializers.EmailField(required=False)
    domain = serializers.CharField(max_length=253, required=False)


class TenantCreatedSerializer(TenantOutputSerializer):
    admin_password = serializers.CharField(allow_null=True)

    class Meta(TenantOutputSerializer.Meta):
        fields = TenantOutputSerializer.Meta.fields + ["admin_password"]


class TenantViewSet(viewsets.GenericViewSet):
    permission_classes = [IsAdminUser]
    lookup_field = "slug"
    serializer_class = TenantOutputSerializer
    queryset = Tenant.objects.exclude(schema_name="public").prefetch_related("domains")

    def _get(self, slug):
        return get_object_or_404(self.get_queryset(), slug=slug)

    @extend_schema(responses=TenantOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TenantOutputSerializer(page, many=True).data)

    @extend_schema(responses=TenantOutputSerializer)
    def retrieve(self, request, slug=None):
        return Response(TenantOutputSerializer(self._get(slug)).data)

    @extend_schema(request=TenantCreateSerializer, responses={201: TenantCreatedSerializer})
    def create(self, request):
        data = TenantCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant, password = services.tenant_create(actor=request.user, **data.validated_data)
        body = TenantOutputSerializer(tenant).data | {"admin_password": password}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("confirm", str, required=True, description="the tenant's slug, repeated")],
        responses={204: None},
    )
    def destroy(self, request, slug=None):
        services.tenant_delete(actor=request.user, tenant=self._get(slug), confirm=request.query_params.get("confirm"))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=TenantOutputSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, slug=None):
        return Response(TenantOutputSerializer(services.tenant_suspend(actor=request.user, tenant=self._get(slug))).data)

    @extend_schema(request=None, responses=TenantOutputSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, slug=None):
        return Response(TenantOutputSerializer(services.tenant_reactivate(actor=request.user, tenant=self._get(slug))).data)
