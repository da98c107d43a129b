"""Tenant-admin pages of roles, users, object grants and modules (the API is in api/urls.py)."""
from django.urls import path

from . import views

app_name = "access"
urlpatterns = [
    path("roles/", views.RolesPage.as_view(), name="roles"),
    path("roles/<int:pk>/", views.RolePage.as_view(), name="role"),
    path("users/", views.UsersPage.as_view(), name="users"),
    path("users/<int:pk>/", views.UserPage.as_view(), name="user"),
    path("grants/", views.GrantsPage.as_view(), name="grants"),
    path("modules/", views.ModulesPage.as_view(), name="modules"),
]
