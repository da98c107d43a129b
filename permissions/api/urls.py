from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("roles", views.RoleViewSet, basename="role")
router.register("users", views.UserViewSet, basename="user")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("grants", views.GrantViewSet, basename="grant")
router.register("modules", views.ModuleViewSet, basename="module")

urlpatterns = [
    path("permissions/catalog/", views.CatalogView.as_view(), name="permission-catalog"),
    path("me/scope/", views.MyScopeView.as_view(), name="my-scope"),
    *router.urls,
]
