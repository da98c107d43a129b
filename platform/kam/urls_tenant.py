"""URLs served on a tenant's host (<slug>.<base domain>)."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from kam.api import views as api_views
from kam.web import views
from permissions.openapi import ScopedSchemaView

api_v1 = [
    path("me/", api_views.MeView.as_view(), name="me"),
    path("tenant/", api_views.TenantInfoView.as_view(), name="tenant-info"),
    path("", include("org_hierarchy.api.urls")),
    path("", include("permissions.api.urls")),
    path("", include("key_accounts.api.urls")),
    path("", include("reporting.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("org/", include("org_hierarchy.urls")),
    path("access/", include("permissions.urls")),
    path("customers/", include("key_accounts.urls")),
    path("reports/", include("reporting.urls")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", ScopedSchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler404 = "kam.web.errors.not_found"
handler500 = "kam.web.errors.server_error"
