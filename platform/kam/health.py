"""Liveness and readiness, answered before tenant routing so probes work on any host."""
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse


def _check_database():
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis():
    from django.core.cache import cache

    cache._cache.get_client(write=True).ping()


def _check_migrations():
    from django.conf import settings
    from django_tenants.utils import schema_context, schema_exists

    for schema in ("public", settings.TENANT_BASE_SCHEMA):
        if not schema_exists(schema):
            raise RuntimeError(f"schema {schema} missing")
        with schema_context(schema):
            executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
            if executor.migration_plan(executor.loader.graph.leaf_nodes()):
                raise RuntimeError(f"unapplied migrations in {schema}")


def readiness():
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis), ("migrations", _check_migrations)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # a probe reports; it never raises
            checks[name] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    return all(v == "ok" for v in checks.values()), checks


class HealthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ready, checks = readiness()
            return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
        return self.get_response(request)
