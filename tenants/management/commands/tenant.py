"""`kam tenant ...`: what platform staff run to manage tenants."""
import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants import services
from tenants.models import Tenant


def _cli_actor():
    return f"cli:{getpass.getuser()}"


class Command(BaseCommand):
    help = "Create, list, suspend, reactivate or delete tenants."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="provision a tenant from the template schema")
        create.add_argument("--slug", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--admin-email", dest="admin_email")
        create.add_argument("--admin-password", dest="admin_password")
        create.add_argument("--domain", help="host name (default <slug>.<base domain>)")
        sub.add_parser("list", help="list tenants")
        for name in ("suspend", "reactivate"):
            sub.add_parser(name).add_argument("slug")
        delete = sub.add_parser("delete", help="drop a tenant's schema and rows (asks for confirmation)")
        delete.add_argument("slug")
        delete.add_argument("--confirm", help="the slug again, for scripts; otherwise you are asked")
        delete.add_argument(
            "--no-input", "--noinput", dest="interactive", action="store_false", help="never ask: refuse without --confirm"
        )

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from None

    def do_create(self, *, slug, name, admin_email, admin_password, domain, **_):
        tenant, password = services.tenant_create(
            actor=_cli_actor(), slug=slug, name=name, admin_email=admin_email, admin_password=admin_password, domain=domain
        )
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug} (schema {tenant.schema_name})"))
        self.stdout.write(f"  URL:      http://{tenant.get_primary_domain().domain}/")
        if admin_email:
            self.stdout.write(f"  admin:    {admin_email}")
            if not admin_password:
                self.stdout.write(f"  password: {password}")

    def do_list(self, **_):
        for tenant in Tenant.objects.exclude(schema_name="public").prefetch_related("domains"):
            domains = ",".join(d.domain for d in tenant.domains.all())
            self.stdout.write(f"{tenant.slug}\t{tenant.status}\t{tenant.schema_name}\t{domains}\t{tenant.name}")

    def do_suspend(self, *, slug, **_):
        services.tenant_suspend(actor=_cli_actor(), tenant=services.tenant_get(slug))
        self.stdout.write(self.style.WARNING(f"Suspended {slug}: its users are refused from now on."))

    def do_reactivate(self, *, slug, **_):
        services.tenant_reactivate(actor=_cli_actor(), tenant=services.tenant_get(slug))
        self.stdout.write(self.style.SUCCESS(f"Reactivated {slug}."))

    def do_delete(self, *, slug, confirm, **options):
        tenant = services.tenant_get(slug)
        if confirm is None:
            if not options.get("interactive", True) or not self.stdin_is_tty():
                raise CommandError("Refusing to delete without confirmation: pass --confirm <slug>.")
            confirm = input(f"This drops every record of {tenant.name}. Type the slug '{slug}' to confirm: ").strip()
        services.tenant_delete(actor=_cli_actor(), tenant=tenant, confirm=confirm)
        self.stdout.write(self.style.SUCCESS(f"Deleted tenant {slug}."))

    @staticmethod
    def stdin_is_tty():
        import sys

        return sys.stdin.isatty()
