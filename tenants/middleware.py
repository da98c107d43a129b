"""Tenant routing by host name, plus the suspension gate."""
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware


def _wants_json(request):
    return request.path.startswith("/api/")


class TenantMiddleware(TenantMainMiddleware):
    """Resolve the tenant from the host (django-tenants) and refuse every request to a
    suspended tenant, so suspension takes effect on the very next request."""

    @staticmethod
    def hostname_from_request(request):
        # Host names are case-insensitive and may end in a dot (FQDN); domains are stored lower-case.
        return TenantMainMiddleware.hostname_from_request(request).lower().rstrip(".")

    def no_tenant_found(self, request, hostname):
        if _wants_json(request):
            return JsonResponse({"error": {"code": "not_found", "message": _("Not found.")}}, status=404)
        return TemplateResponse(request, "web/unknown_host.html", {"hostname": hostname}, status=404).render()

    def __call__(self, request):
        # django-tenants' process_request returns a response only when no tenant matches.
        response = self.process_request(request)
        if response is not None:
            return response
        tenant = request.tenant
        if tenant.schema_name != "public" and not tenant.is_active:
            message = _("This organisation's access has been suspended. Contact your platform administrator.")
            if _wants_json(request):
                return JsonResponse({"error": {"code": "tenant_suspended", "message": message}}, status=403)
            return TemplateResponse(request, "web/suspended.html", {"message": message}, status=403).render()
        return self.get_response(request)
