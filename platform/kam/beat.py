"""Celery beat scheduler: periodic jobs go to every active tenant (tenant-schemas-celery)."""
from tenant_schemas_celery.scheduler import TenantAwareScheduler


class ActiveTenantScheduler(TenantAwareScheduler):
    """Sends each periodic job once per tenant, skipping suspended tenants."""

    @classmethod
    def get_queryset(cls):
        from tenants.models import Tenant

        return Tenant.objects.filter(status=Tenant.Status.ACTIVE)
