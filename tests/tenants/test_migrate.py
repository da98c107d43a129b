"""`kam migrate` brings the template and every tenant up to date, in parallel."""
import pytest
from django.core.management import call_command
from django.db import connection

from tenants import services
from tenants.models import Tenant


def _has_sessions(schema):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".django_session'])
        table = cursor.fetchone()[0]
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s', ["sessions"])
        return table and cursor.fetchone()[0] > 0


def _unapply_sessions(schema):
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{schema}".django_session')
        cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s', ["sessions"])


def test_migrate_all_brings_the_template_and_every_tenant_up_to_date(django_db_setup, django_db_blocker):
    # Committed work: the multiprocessing executor's children use their own connections.
    with django_db_blocker.unblock():
        made = [services.tenant_create(actor="pytest", slug=f"mig-{n}", name=f"Mig {n}")[0] for n in ("one", "two")]
        try:
            behind = ["kam_template"] + [t.schema_name for t in made]
            for schema in behind:
                _unapply_sessions(schema)
            assert not any(_has_sessions(schema) for schema in behind)
            assert Tenant.objects.exclude(schema_name="public").count() >= 4  # parallel executor is used

            call_command("migrate_all", verbosity=0)

            connection.set_schema_to_public()
            assert all(_has_sessions(schema) for schema in behind)
        finally:
            connection.set_schema_to_public()
            for tenant in made:
                services.tenant_delete(actor="pytest", tenant=tenant, confirm=tenant.slug)


@pytest.mark.django_db
def test_migrate_all_is_idempotent(capsys):
    # --serial: inside the test's transaction, forked migration workers could not connect.
    call_command("migrate_all", serial=True, verbosity=0)
    assert "Migrated public, kam_template and" in capsys.readouterr().out
