"""The import wizard (R7), under /customers/imports/: upload -> map the columns -> dry-run report
-> commit -> progress.

``import-list`` lists the user's imports (tenant admins: everyone's); ``import-new`` takes the
file and a saved mapping; ``import-map`` shows the file's columns with a field for each, the
unit and the mapping as JSON, and starts the dry run; ``import-detail`` shows the report (every
invalid row with line, column and reason, paginated), the commit button, and the progress while
a job runs (htmx polls the report). Every page needs "customer.add" at some unit (else the 403
page) and the customers module (else 404); a job is its creator's (and tenant admins') only.
"""
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from key_accounts.importing import selectors, services
from key_accounts.importing.forms import MapForm, UploadForm, guessed_spec
from key_accounts.importing.reader import FileProblem, sample
from key_accounts.models import ImportJob
from org_hierarchy.forms import add_service_errors

from ._common import CustomerPage, is_htmx

ERRORS_PER_PAGE = 50
RECENT = 50
Status = ImportJob.Status


class ImportPage(CustomerPage):
    """Customer pages for importers: "customer.add" somewhere, else the 403 page."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not services.may_import(request.user):
            return render(request, "key_accounts/forbidden.html", {
                "reason": _("Importing customers needs the permission to add customers at some unit.")}, status=403)
        return super().dispatch(request, *args, **kwargs)


class ImportListPage(ImportPage):
    def get(self, request):
        jobs = selectors.job_list(user=request.user)[:RECENT]
        return render(request, "key_accounts/imports/list.html", {"jobs": jobs})


class ImportNewPage(ImportPage):
    def form(self, data=None, files=None):
        return UploadForm(data, files, mappings=selectors.mapping_list(user=self.request.user))

    def get(self, request, form=None, status=200):
        return render(request, "key_accounts/imports/new.html", {"form": form or self.form()}, status=status)

    def post(self, request):
        form = self.form(request.POST, request.FILES)
        if not form.is_valid():
            return self.get(request, form=form, status=400)
        try:
            job = services.job_create(actor=request.user, upload=form.cleaned_data["file"],
                                      mapping=form.cleaned_data["mapping"], start=False)
        except ValidationError as exc:
            add_service_errors(form, exc)
            return self.get(request, form=form, status=400)
        return redirect("key_accounts:import-map", pk=job.pk)


class ImportMapPage(ImportPage):
    def context(self, job, data=None):
        spec = job.spec or {}
        problem, header, rows, encoding = None, [], [], ""
        try:
            header, rows, encoding = sample(job.file.path, job.original_name, spec)
        except FileProblem as exc:
            problem = exc.reason
        if not (spec.get("columns") or spec.get("templates")) and header:
            spec = {**guessed_spec(header), **{k: v for k, v in spec.items() if k != "columns"}}
        units = selectors.import_units(user=self.request.user)
        unit_code = (spec.get("fixed") or {}).get("org_unit")
        initial = {"unit": units.filter(code=unit_code).first()} if unit_code else {}
        form = MapForm(data, header=header, units=units, spec=spec, initial=initial)
        columns = [(column, field, [row[i] if i < len(row) else "" for row in rows], column in form.rule_columns)
                   for i, (column, field) in enumerate(form.column_fields)]
        return {"job": job, "form": form, "columns": columns, "problem": problem, "encoding": encoding}

    def get(self, request, pk, context=None, status=200):
        job = selectors.job_get(user=request.user, pk=pk)
        if job.status in services.RUNNING + services.WAITING or job.status == Status.DONE:
            return redirect("key_accounts:import-detail", pk=job.pk)
        return render(request, "key_accounts/imports/map.html", context or self.context(job), status=status)

    def post(self, request, pk):
        job = selectors.job_get(user=request.user, pk=pk)
        context = self.context(job, request.POST)
        form = context["form"]
        if not form.is_valid():
            return self.get(request, pk, context=context, status=400)
        spec = form.built_spec()
        try:
            mapping = job.mapping if job.mapping is not None and job.mapping.spec == spec else None
            if form.cleaned_data["save_as"]:
                mapping = services.mapping_create(actor=request.user, name=form.cleaned_data["save_as"], spec=spec)
            services.job_map(actor=request.user, job=job, mapping=mapping, spec=spec, unit=form.cleaned_data["unit"])
        except ValidationError as exc:
            add_service_errors(form, exc, {"name": "save_as", "file": None, "mapping": "spec", "status": None})
            return self.get(request, pk, context=context, status=400)
        return redirect("key_accounts:import-detail", pk=job.pk)


class ImportDetailPage(ImportPage):
    def get(self, request, pk):
        job = services.job_refresh(selectors.job_get(user=request.user, pk=pk))
        errors = Paginator(selectors.job_errors(job), ERRORS_PER_PAGE).get_page(request.GET.get("page"))
        context = {
            "job": job,
            "progress": selectors.job_progress(job),
            "errors": errors,
            "running": job.status in services.RUNNING + services.WAITING,
            "may_commit": job.status == Status.CHECKED or (job.status == Status.FAILED and job.checked_at is not None),
            "may_remap": job.status in (Status.UPLOADED, Status.CHECKED, Status.INVALID, Status.FAILED),
        }
        if is_htmx(request, "import-report"):
            return render(request, "key_accounts/imports/_report.html", context)
        return render(request, "key_accounts/imports/detail.html", context)

    def post(self, request, pk):
        job = services.job_refresh(selectors.job_get(user=request.user, pk=pk))
        action = request.POST.get("action")
        try:
            if action == "commit":
                job = services.job_commit(actor=request.user, job=job)
            elif action == "check":
                job = services.job_check(actor=request.user, job=job)
            else:
                return redirect("key_accounts:import-detail", pk=job.pk)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        return redirect("key_accounts:import-detail", pk=job.pk)


urlpatterns = [
    path("", ImportListPage.as_view(), name="import-list"),
    path("new/", ImportNewPage.as_view(), name="import-new"),
    path("<int:pk>/", ImportDetailPage.as_view(), name="import-detail"),
    path("<int:pk>/map/", ImportMapPage.as_view(), name="import-map"),
]
