"""Filled in by the imports work of #4."""
urlpatterns = []
