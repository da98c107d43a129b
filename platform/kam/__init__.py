"""KAM's Django project package (settings, URLs, Celery app, CLI).

It lives in the plain folder ``platform/`` under the import name ``kam``: a package
importable as ``platform`` would shadow the standard library's ``platform`` module.
"""
from .celery import app as celery_app

__all__ = ["celery_app"]
