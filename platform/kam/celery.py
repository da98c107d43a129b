"""The Celery app. Tasks carry the schema they were queued from (tenant-schemas-celery)
and run inside it; the worker resets the schema after each task."""
import os

from celery.canvas import Signature
from celery.signals import setup_logging
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections, transaction
from tenant_schemas_celery.app import CeleryApp, get_schema_name_from_task
from tenant_schemas_celery.task import TenantTask as BaseTenantTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.base")

SCHEMA_HEADER = "_schema_name"


class TenantUnavailable(Exception):
    """The task's tenant schema could not be activated (e.g. the tenant was deleted)."""


class TenantTask(BaseTenantTask):
    """Base of every KAM task: runs in the schema named by the message's ``_schema_name``
    header (switched in task_prerun, restored in task_postrun by tenant-schemas-celery).

    Tasks must be idempotent: they are acknowledged late and retried on transient
    database errors.
    """

    abstract = True
    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = True
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 5

    def before_start(self, task_id, args, kwargs):
        # tenant-schemas-celery logs and swallows a failed switch, which would run the
        # task in the public schema. Never run a task anywhere but in its own schema.
        from django_tenants.utils import get_public_schema_name

        schema = get_schema_name_from_task(self, kwargs) or get_public_schema_name()
        if all(connections[alias].schema_name == schema for alias in self.get_tenant_databases()):
            return
        try:
            self.get_tenant_for_schema(schema)
        except ObjectDoesNotExist:
            raise TenantUnavailable(f"no tenant with schema {schema!r}") from None
        except DatabaseError as exc:
            raise self.retry(exc=exc)
        raise self.retry(exc=TenantUnavailable(f"could not switch to schema {schema!r}"))


app = CeleryApp("kam", task_cls=TenantTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["kam", "tenants", "org_hierarchy", "permissions", "key_accounts", "reporting"])


def enqueue_on_commit(task, *args, **kwargs):
    """Queue ``task`` once the current transaction commits (never for rolled-back work).

    ``task`` is a task or a signature (``task.s(...).set(countdown=60)``). It will run in
    the schema active now, so call this inside the tenant. Outside a transaction it is
    sent at once. A failed send is logged, not raised: the caller's work is committed.

    Returns the task's AsyncResult; it stays PENDING forever if the transaction rolls back.
    """
    sig = task.clone(args, kwargs) if isinstance(task, Signature) else task.signature(args, kwargs)
    sig.options["headers"] = {SCHEMA_HEADER: connection.schema_name, **(sig.options.get("headers") or {})}
    result = sig.freeze()
    transaction.on_commit(sig.apply_async, robust=True)
    return result


@setup_logging.connect
def _log_like_the_web(**kwargs):
    """Workers and beat keep the settings' LOGGING (JSON lines with the tenant and request id)
    instead of Celery replacing the root logger with its own text format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
