"""Filled in by the customers work of #4."""
urlpatterns = []
