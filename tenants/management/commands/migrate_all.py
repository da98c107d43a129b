"""`kam migrate`: the public schema, then the template, then every tenant (in parallel)."""
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django_tenants.utils import schema_exists

from tenants.models import Domain, Tenant


class Command(BaseCommand):
    help = "Migrate the public schema, the tenant template schema and every tenant schema."

    def add_arguments(self, parser):
        parser.add_argument("--serial", action="store_true", help="migrate tenants one at a time")

    def handle(self, *args, serial=False, verbosity=1, **options):
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        ensure_public_tenant()

        template = settings.TENANT_BASE_SCHEMA
        if not schema_exists(template):
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{template}"')
        call_command("migrate_schemas", schema_name=template, interactive=False, verbosity=verbosity)

        tenants = Tenant.objects.exclude(schema_name="public").count()
        if tenants:
            executor = "standard" if serial or tenants == 1 else "multiprocessing"
            call_command("migrate_schemas", tenant=True, executor=executor, interactive=False, verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS(f"Migrated public, {template} and {tenants} tenant schema(s)."))


def ensure_public_tenant():
    """The platform's own row and host, so the base domain routes to the public URLconf."""
    public, _ = Tenant.objects.get_or_create(schema_name="public", defaults={"slug": "public", "name": "KAM platform"})
    Domain.objects.get_or_create(domain=settings.KAM_BASE_DOMAIN, defaults={"tenant": public, "is_primary": True})
    return public
