"""The tenant URLconf plus one endpoint of a switchable module, for the module tests."""
from django.http import HttpResponse
from django.template import Context, Template
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from kam.urls_tenant import urlpatterns as tenant_urlpatterns
from permissions.api_permissions import ScopedPermission
from permissions.decorators import module_required


class CampaignProbe(APIView):
    permission_classes = [ScopedPermission]
    resource = "report"
    module = "campaigns"

    def get(self, request):
        return Response({"ok": True})


@module_required("campaigns")
def campaign_page(request):
    return HttpResponse("campaigns page")


MENU = Template('{% load tenant_admin %}{% module_on "campaigns" as on %}{% if on %}<a href="/campaigns/">campaigns</a>{% endif %}')


def menu(request):
    return HttpResponse(MENU.render(Context({"request": request})))


urlpatterns = [
    path("api/v1/campaign-probe/", CampaignProbe.as_view(), name="campaign-probe"),
    path("campaigns/", campaign_page, name="campaign-page"),
    path("menu/", menu, name="menu"),
    *tenant_urlpatterns,
]
