"""Customer export pages (R8), under /customers/exports/.

``export`` with ?format=csv|xlsx and the list's filters streams the file, or starts a
background job and redirects to its page; without a format it lists the user's recent exports.
``export-detail`` shows a job's progress (htmx polls it) and its download link;
``export-download`` hands out the file. Every page needs "customer.export" (else the 403 page)
and the customers module (else 404); jobs are their creator's (and tenant admins') only.
"""
from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import translation
from django.views import View

from key_accounts import exporting
from key_accounts.models import ExportJob
from permissions.selectors import module_enabled

RECENT = 20  # jobs listed on the exports page


class ExportPageBase(LoginRequiredMixin, View):
    """Login (else the login page), the customers module (else 404, as if the page did not
    exist), then "customer.export" (else the 403 page, also for a refusal further on)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not module_enabled(request.user, "customers"):
            raise Http404
        if not exporting.may_export(request.user):
            return forbidden(request)
        try:
            return super().dispatch(request, *args, **kwargs)
        except PermissionDenied as exc:
            return forbidden(request, str(exc))


def forbidden(request, reason=""):
    return render(request, "key_accounts/exports/forbidden.html", {"reason": reason}, status=403)


class ExportPage(ExportPageBase):
    def get(self, request):
        fmt = request.GET.get("format")
        if not fmt:
            return self.jobs(request)
        try:
            response, job = exporting.export_start(
                user=request.user, fmt=fmt, params=request.GET, language=translation.get_language()
            )
        except ValidationError as exc:
            return self.jobs(request, errors=exc.messages, status=400)
        if response is not None:
            return response
        return redirect("key_accounts:export-detail", pk=job.pk)

    def jobs(self, request, errors=(), status=200):
        context = {
            "jobs": exporting.job_list(user=request.user)[:RECENT],
            "errors": errors,
            "retention_days": settings.KAM_EXPORT_RETENTION_DAYS,
        }
        return render(request, "key_accounts/exports/index.html", context, status=status)


class ExportDetailPage(ExportPageBase):
    def get(self, request, pk):
        job = exporting.job_get(user=request.user, pk=pk)
        context = {"job": job, "working": job.status in (ExportJob.Status.PENDING, ExportJob.Status.RUNNING)}
        if request.headers.get("HX-Request") == "true":
            return render(request, "key_accounts/exports/_status.html", context)
        return render(request, "key_accounts/exports/detail.html", context)


class ExportDownloadPage(ExportPageBase):
    def get(self, request, pk):
        job = exporting.job_get(user=request.user, pk=pk)
        return exporting.job_download(user=request.user, job=job)


urlpatterns = [
    path("", ExportPage.as_view(), name="export"),
    path("<int:pk>/", ExportDetailPage.as_view(), name="export-detail"),
    path("<int:pk>/download/", ExportDownloadPage.as_view(), name="export-download"),
]
