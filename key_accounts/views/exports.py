"""Filled in by the exports work of #4."""
urlpatterns = []
