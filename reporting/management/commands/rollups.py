"""`kam rollups recompute --tenant SLUG` and `kam rollups refresh --tenant SLUG`: the roll-ups
from the command line (after a bulk load, or to check a tenant's figures by hand)."""
import json

from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from reporting import services
from tenants.commands import tenant_schema


class Command(BaseCommand):
    help = "Recompute a tenant's roll-ups, or refresh the changes waiting in its dirty set."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["recompute", "refresh"])
        parser.add_argument("--tenant", required=True, help="the tenant's slug")

    def handle(self, *args, action, tenant, **options):
        with schema_context(tenant_schema(tenant)):
            result = services.recompute() if action == "recompute" else services.refresh_dirty()
        self.stdout.write(json.dumps(result, ensure_ascii=False))
