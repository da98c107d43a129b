"""Platform tasks: periodic jobs run by beat once per active tenant, and a probe for operators."""
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from .celery import app


@app.task
def clear_expired_sessions():
    """Delete expired sessions in the task's tenant schema; safe to run twice."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return {"schema": connection.schema_name, "deleted": deleted}


@app.task
def tenant_probe():
    """Where did this task run? The schema, PostgreSQL's effective search path and the
    number of users there: checks that workers switch tenants (send it with the tenant's
    ``_schema_name`` header, or from inside the tenant)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schemas(false)")
        search_path = cursor.fetchone()[0]
    return {"schema": connection.schema_name, "search_path": search_path, "users": get_user_model().objects.count()}
