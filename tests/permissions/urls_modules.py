"""The tenant URLconf plus one endpoint of a switchable module, for the module tests."""
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from kam.urls_tenant import urlpatterns as tenant_urlpatterns
from permissions.api_permissions import ScopedPermission


class CampaignProbe(APIView):
    permission_classes = [ScopedPermission]
    resource = "report"
    module = "campaigns"

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("api/v1/campaign-probe/", CampaignProbe.as_view(), name="campaign-probe"), *tenant_urlpatterns]
