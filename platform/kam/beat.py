"""Celery beat scheduler: periodic jobs go to every active tenant (tenant-schemas-celery)."""
from django.db import close_old_connections
from tenant_schemas_celery.scheduler import TenantAwarePersistentScheduler


class ActiveTenantScheduler(TenantAwarePersistentScheduler):
    """Sends each periodic job once per active tenant, skipping suspended ones.

    Persistent (the ``--schedule`` file) so a restarted beat keeps each job's last run
    instead of starting every interval again.
    """

    @classmethod
    def get_queryset(cls):
        from tenants.models import Tenant

        return Tenant.objects.filter(status=Tenant.Status.ACTIVE)

    def apply_entry(self, entry, producer=None):
        # Beat holds its connection for hours between jobs; drop it if the server went away.
        close_old_connections()
        return super().apply_entry(entry, producer=producer)
