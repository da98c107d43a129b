"""KAM's Django project package (settings, URLs, Celery app, CLI).

It lives in the plain folder ``platform/`` under the import name ``kam``: a package
importable as ``platform`` would shadow the standard library's ``platform`` module.

The Celery app is in ``kam.celery`` (``celery -A kam`` finds it there). It is not imported
here on purpose: importing ``kam`` (e.g. for ``kam.cli``) must not pick a settings module.
"""
