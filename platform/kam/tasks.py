"""Platform-wide periodic tasks, run by beat once per active tenant."""
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from .celery import app


@app.task(bind=True)
def clear_expired_sessions(self):
    """Delete expired sessions in the task's tenant schema; safe to run twice."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return {"schema": connection.schema_name, "deleted": deleted}
