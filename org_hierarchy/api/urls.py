from rest_framework.routers import SimpleRouter

from .views import LevelViewSet, UnitViewSet

router = SimpleRouter()
router.register("org-levels", LevelViewSet, basename="org-level")
router.register("org-units", UnitViewSet, basename="org-unit")
urlpatterns = router.urls
