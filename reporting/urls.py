"""Dashboard pages under /reports/."""
from django.urls import path

from .views import pages

app_name = "reporting"

urlpatterns = [
    path("", pages.DashboardPage.as_view(), name="dashboard"),
    path("export/", pages.DashboardExport.as_view(), name="export"),
]
