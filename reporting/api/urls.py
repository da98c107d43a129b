"""Reporting API under /api/v1/reports/."""
from django.urls import path

from . import views

urlpatterns = [
    path("reports/figures/", views.FiguresView.as_view(), name="report-figures"),
    path("reports/trend/", views.TrendView.as_view(), name="report-trend"),
    path("reports/ranking/", views.RankingView.as_view(), name="report-ranking"),
    path("reports/products/", views.ProductsView.as_view(), name="report-products"),
    path("reports/groups/", views.GroupsView.as_view(), name="report-groups"),
]
