"""URLs served on the platform's own host (the base domain): platform staff only."""
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from kam.web import views

urlpatterns = [
    path("", views.platform_home, name="platform-home"),
    # LOGOUT_REDIRECT_URL and login_required name "login"; here staff log in through the admin.
    path("login/", RedirectView.as_view(pattern_name="admin:login", query_string=True), name="login"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("tenants.api.urls", "tenants"), namespace="platform")),
    path("api/schema/", SpectacularAPIView.as_view(urlconf="kam.urls_public"), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler404 = "kam.web.errors.not_found"
handler500 = "kam.web.errors.server_error"
