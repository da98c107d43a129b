"""Customer export API (R8), under /api/v1/exports/.

GET exports/customers.csv|.xlsx?<list filters> streams the file when it is small, else answers
202 with a background job; GET exports/ lists the caller's jobs, exports/{id}/ is one job's
status, exports/{id}/download/ its file. Every call needs "customer.export" (403 without it, 404 where the customers module is
off); a job is visible to its creator and tenant admins only (404 for anyone else).
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.urls import path, reverse
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import NotAcceptable, PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from key_accounts import exporting
from key_accounts.filters import CustomerFilter
from key_accounts.models import Customer, ExportJob
from permissions.api_permissions import ScopedPermission


class ExportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = ["id", "format", "status", "row_count", "filters", "message", "created_at", "finished_at", "url",
                  "download_url"]

    def _absolute(self, name, job):
        url = reverse(f"v1:{name}", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_url(self, job) -> str:
        return self._absolute("export-job", job)

    def get_download_url(self, job) -> str | None:
        return self._absolute("export-download", job) if job.status == ExportJob.Status.DONE else None


class AnyAccept(DefaultContentNegotiation):
    """A client asking for text/csv or a spreadsheet must not get 406 before the view runs: the
    file answers are not rendered by DRF, and JSON (job, errors) is the fallback."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type


class ExportAPIView(GenericAPIView):
    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "customers"
    scoped_actions = {"GET": "export"}
    content_negotiation_class = AnyAccept
    serializer_class = ExportJobSerializer
    filter_backends = []


FILTER_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, many=name in ("kind", "grade", "status", "industry"),
                     description=str(getattr(spec, "label", "") or ""))
    for name, spec in CustomerFilter.base_filters.items()
]


class CustomerExportView(ExportAPIView):
    queryset = Customer.objects.none()  # grant-only exporters pass ScopedPermission too
    fmt = None

    @extend_schema(
        summary="Export the filtered customer list",
        parameters=FILTER_PARAMETERS,
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="the file (at most KAM_EXPORT_SYNC_LIMIT rows)"),
            202: OpenApiResponse(ExportJobSerializer, description="a background job (more rows)"),
        },
    )
    def get(self, request):
        response, job = exporting.export_start(
            user=request.user, fmt=self.fmt, params=request.query_params, language=translation.get_language()
        )
        if response is not None:
            return response
        data = ExportJobSerializer(job, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


@extend_schema_view(get=extend_schema(operation_id="customer_export_csv"))
class CustomerCsvExportView(CustomerExportView):
    fmt = "csv"


@extend_schema_view(get=extend_schema(operation_id="customer_export_xlsx"))
class CustomerXlsxExportView(CustomerExportView):
    fmt = "xlsx"


class ExportJobListView(ExportAPIView, ListAPIView):
    queryset = ExportJob.objects.none()

    def get_queryset(self):
        return exporting.job_list(user=self.request.user)

    @extend_schema(operation_id="export_list", summary="The caller's export jobs, newest first (tenant admins: everyone's)")
    def get(self, request):
        return self.list(request)


class ExportJobView(ExportAPIView):
    queryset = ExportJob.objects.none()

    @extend_schema(operation_id="export_retrieve", summary="An export job's status", responses=ExportJobSerializer)
    def get(self, request, pk):
        job = exporting.job_get(user=request.user, pk=pk)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class ExportDownloadView(ExportAPIView):
    queryset = ExportJob.objects.none()

    @extend_schema(operation_id="export_download", summary="The file of a finished export job",
                   responses={200: OpenApiTypes.BINARY})
    def get(self, request, pk):
        job = exporting.job_get(user=request.user, pk=pk)
        try:
            return exporting.job_download(user=request.user, job=job)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc) or None) from None  # keep the reason in the answer


urlpatterns = [
    path("exports/customers.csv", CustomerCsvExportView.as_view(), name="customer-export-csv"),
    path("exports/customers.xlsx", CustomerXlsxExportView.as_view(), name="customer-export-xlsx"),
    path("exports/", ExportJobListView.as_view(), name="export-list"),
    path("exports/<int:pk>/", ExportJobView.as_view(), name="export-job"),
    path("exports/<int:pk>/download/", ExportDownloadView.as_view(), name="export-download"),
]
