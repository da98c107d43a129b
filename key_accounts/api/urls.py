"""Key-account API under /api/v1/: each area keeps its own routes."""
from django.urls import include, path

urlpatterns = [
    path("", include("key_accounts.api.customers")),
    path("", include("key_accounts.api.imports")),
    path("", include("key_accounts.api.exports")),
]
