"""Key-account pages under /customers/: each area keeps its own routes."""
from django.urls import include, path

app_name = "key_accounts"

urlpatterns = [
    path("", include("key_accounts.views.customers")),
    path("imports/", include("key_accounts.views.imports")),
    path("exports/", include("key_accounts.views.exports")),
]
