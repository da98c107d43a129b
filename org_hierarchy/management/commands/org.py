"""`kam org import FILE --tenant SLUG` and `kam org tree --tenant SLUG`: a tenant's org tree
from the command line (what an operator runs when onboarding a tenant)."""
import getpass

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from org_hierarchy.importing import import_org_tree
from org_hierarchy.models import OrgUnit
from tenants.commands import tenant_schema


class Command(BaseCommand):
    help = "Import or show a tenant's org tree."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("import", help="import a code,name,parent_code,level CSV (idempotent by code)")
        load.add_argument("file")
        load.add_argument("--tenant", required=True, help="the tenant's slug")
        load.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
        load.add_argument(
            "--create-levels", action="store_true", help="add the levels hq/province/city (ranks 0/1/2) if the tenant has none"
        )
        tree = sub.add_parser("tree", help="print the tree, one unit a line")
        tree.add_argument("--tenant", required=True, help="the tenant's slug")
        tree.add_argument("--depth", type=int, default=0, help="stop at this depth (0: everything)")

    def handle(self, *args, action, tenant, **options):
        with schema_context(tenant_schema(tenant)):
            getattr(self, f"do_{action}")(**options)

    def do_import(self, *, file, dry_run, create_levels, **_):
        try:
            report = import_org_tree(actor=f"cli:{getpass.getuser()}", file=file, dry_run=dry_run, create_levels=create_levels)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        lines = list(report.lines())
        if not report.ok:
            raise CommandError("\n".join(lines))
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)

    def do_tree(self, *, depth, **_):
        units = OrgUnit.objects.select_related("level").order_by("path")
        if depth:
            units = units.filter(depth__lte=depth)
        for unit in units:
            closed = " (closed)" if not unit.is_active else ""
            self.stdout.write(f"{'  ' * (unit.depth - 1)}{unit.code}\t{unit.name}\t[{unit.level.code}]{closed}")
