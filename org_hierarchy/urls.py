"""Tenant-admin pages of the org tree (the API is in api/urls.py)."""
from django.urls import path

from . import views

app_name = "org"
urlpatterns = [
    path("", views.TreePage.as_view(), name="tree"),
    path("units/<int:pk>/", views.UnitPage.as_view(), name="unit"),
    path("levels/", views.LevelsPage.as_view(), name="levels"),
]
