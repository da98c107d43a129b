"""Customer import API (R7), under /api/v1/imports/ and /api/v1/column-mappings/.

POST imports/ (multipart: ``file``, and ``mapping`` (an id) or ``spec`` (JSON), ``unit`` (an id)
when the mapping leaves the unit open) stores the file and starts its dry run: small files are
checked in the request (201 with the report), larger ones in the background (202; poll the
job). GET imports/{id}/ is the job with its progress and its errors, paginated (``?page=``,
``?page_size=``); POST imports/{id}/commit/ imports a checked job, POST imports/{id}/check/
checks it again. Column mappings are plain CRUD.

Every call needs "customer.add" at some unit (403 without it, 404 where the customers module is
off). A job is visible to its creator and tenant admins only (404 for anyone else); a mapping to
everyone who may import, and changed by its creator or a tenant admin.
"""
import json

from django.urls import path, reverse
from django.utils.translation import gettext as _, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from kam.api.pagination import PagePagination
from key_accounts.importing import selectors, services
from key_accounts.models import ColumnMapping, ImportJob, ImportRowError
from permissions.api_permissions import ScopedPermission


class ImportAPI:
    """What every import endpoint declares: "customer.add" for every method."""

    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "customers"
    scoped_actions = {method: "add" for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")}


# --- Serializers -------------------------------------------------------------------------------

class RowErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRowError
        fields = ["line", "column", "reason", "value"]


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.get_username", read_only=True)
    mapping_name = serializers.CharField(source="mapping.name", read_only=True, default=None)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = ["id", "url", "original_name", "status", "message", "mapping", "mapping_name", "spec", "encoding",
                  "progress", "total_rows", "created_count", "updated_count", "unchanged_count", "error_count",
                  "created_by", "created_at", "checked_at", "started_at", "finished_at"]

    def get_url(self, job) -> str:
        url = reverse("v1:import-job", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_progress(self, job) -> dict:
        return selectors.job_progress(job)


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    mapping = serializers.IntegerField(required=False, allow_null=True, help_text=gettext_lazy("a saved column mapping"))
    spec = serializers.JSONField(required=False, allow_null=True, help_text=gettext_lazy("a mapping given inline (JSON)"))
    unit = serializers.IntegerField(required=False, allow_null=True,
                                    help_text=gettext_lazy("the unit customers go to, when the mapping leaves it open"))

    def validate_spec(self, value):
        if isinstance(value, str):  # a multipart field holds text
            try:
                return json.loads(value)
            except ValueError:
                raise ValidationError(_("Not valid JSON.")) from None
        return value


class ColumnMappingSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)

    class Meta:
        model = ColumnMapping
        fields = ["id", "name", "description", "spec", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}  # the service checks, with the model


# --- Jobs ---------------------------------------------------------------------------------------

def _answer(job, request, created=False):
    data = ImportJobView.serialize(job, request)
    waiting = job.status in services.RUNNING + services.WAITING
    code = status.HTTP_202_ACCEPTED if waiting else (status.HTTP_201_CREATED if created else status.HTTP_200_OK)
    return Response(data, status=code, headers={"Location": data["url"]} if created or waiting else None)


class ImportJobListView(ImportAPI, GenericAPIView):
    queryset = ImportJob.objects.none()
    serializer_class = ImportJobSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filter_backends = []

    @extend_schema(summary="The caller's import jobs, newest first (tenant admins: everyone's)", operation_id="v1_imports_list")
    def get(self, request):
        page = self.paginate_queryset(selectors.job_list(user=request.user))
        return self.get_paginated_response(ImportJobSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Upload a file; its dry run starts at once",
        request={"multipart/form-data": ImportCreateSerializer},
        responses={201: ImportJobSerializer, 202: ImportJobSerializer},
    )
    def post(self, request):
        serializer = ImportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        mapping = unit = None
        if data.get("mapping") is not None:
            mapping = selectors.mapping_list(user=request.user).filter(pk=data["mapping"]).first()
            if mapping is None:
                raise ValidationError({"mapping": [_("Unknown mapping.")]})
        if data.get("unit") is not None:
            # Unknown units and units the caller may not add to answer alike.
            unit = selectors.import_units(user=request.user).filter(pk=data["unit"]).first()
            if unit is None:
                raise ValidationError({"unit": [_("You may not add customers to this unit.")]})
        job = services.job_create(actor=request.user, upload=data["file"], mapping=mapping, spec=data.get("spec"), unit=unit)
        return _answer(job, request, created=True)


class ErrorPagination(PagePagination):
    page_size = 100


class ImportJobView(ImportAPI, GenericAPIView):
    queryset = ImportJob.objects.none()
    serializer_class = ImportJobSerializer
    filter_backends = []

    @staticmethod
    def serialize(job, request, errors=None):
        data = ImportJobSerializer(job, context={"request": request}).data
        if errors is not None:
            data["errors"] = errors
        return data

    @extend_schema(
        summary="An import job: status, progress and its errors (paginated by ?page= and ?page_size=)",
        parameters=[OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("page_size", OpenApiTypes.INT)],
        responses=ImportJobSerializer,
    )
    def get(self, request, pk):
        job = services.job_refresh(selectors.job_get(user=request.user, pk=pk))
        paginator = ErrorPagination()
        page = paginator.paginate_queryset(selectors.job_errors(job), request, view=self)
        errors = paginator.get_paginated_response(RowErrorSerializer(page, many=True).data).data
        return Response(self.serialize(job, request, errors))


class ImportCommitView(ImportAPI, GenericAPIView):
    queryset = ImportJob.objects.none()
    serializer_class = ImportJobSerializer

    @extend_schema(summary="Import a checked job: every row or none", request=None,
                   responses={200: ImportJobSerializer, 202: ImportJobSerializer})
    def post(self, request, pk):
        job = services.job_refresh(selectors.job_get(user=request.user, pk=pk))
        return _answer(services.job_commit(actor=request.user, job=job), request)


class ImportCheckView(ImportAPI, GenericAPIView):
    queryset = ImportJob.objects.none()
    serializer_class = ImportJobSerializer

    @extend_schema(summary="Run the dry run of a job again", request=None,
                   responses={200: ImportJobSerializer, 202: ImportJobSerializer})
    def post(self, request, pk):
        job = services.job_refresh(selectors.job_get(user=request.user, pk=pk))
        return _answer(services.job_check(actor=request.user, job=job), request)


# --- Column mappings ---------------------------------------------------------------------------

class ColumnMappingViewSet(ImportAPI, viewsets.GenericViewSet):
    queryset = ColumnMapping.objects.none()
    serializer_class = ColumnMappingSerializer
    filter_backends = []

    def _get(self, pk):
        return selectors.mapping_get(user=self.request.user, pk=pk)

    def _parsed(self, partial=False):
        serializer = ColumnMappingSerializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def list(self, request):
        page = self.paginate_queryset(selectors.mapping_list(user=request.user))
        return self.get_paginated_response(ColumnMappingSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(ColumnMappingSerializer(self._get(pk)).data)

    def create(self, request):
        data = self._parsed()
        mapping = services.mapping_create(
            actor=request.user, name=data["name"], spec=data.get("spec") or {}, description=data.get("description", "")
        )
        return Response(ColumnMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        mapping = self._get(pk)
        data = self._parsed(partial=True)
        mapping = services.mapping_update(actor=request.user, mapping=mapping, **data)
        return Response(ColumnMappingSerializer(mapping).data)

    def update(self, request, pk=None):
        mapping = self._get(pk)
        data = self._parsed()
        mapping = services.mapping_update(actor=request.user, mapping=mapping, **data)
        return Response(ColumnMappingSerializer(mapping).data)

    def destroy(self, request, pk=None):
        services.mapping_delete(actor=request.user, mapping=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


mappings = ColumnMappingViewSet
urlpatterns = [
    path("imports/", ImportJobListView.as_view(), name="import-list"),
    path("imports/<int:pk>/", ImportJobView.as_view(), name="import-job"),
    path("imports/<int:pk>/commit/", ImportCommitView.as_view(), name="import-commit"),
    path("imports/<int:pk>/check/", ImportCheckView.as_view(), name="import-check"),
    path("column-mappings/", mappings.as_view({"get": "list", "post": "create"}), name="column-mapping-list"),
    path("column-mappings/<int:pk>/", mappings.as_view(
        {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}), name="column-mapping-detail"),
]
