"""The Celery app. Tasks carry the schema they were queued from (tenant-schemas-celery)
and run inside it; the worker resets the schema after each task."""
import os

from django.db import transaction
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.base")

app = CeleryApp("kam")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["kam", "tenants", "org_hierarchy", "permissions", "key_accounts", "reporting"])


def enqueue_on_commit(task, *args, **kwargs):
    """Queue ``task`` once the current transaction commits (never for rolled-back work).

    The schema header is read when the message is sent, so call this inside the tenant.
    """
    from django.db import connection

    schema = connection.schema_name

    def send():
        task.apply_async(args=args, kwargs=kwargs, headers={"_schema_name": schema})

    transaction.on_commit(send)

