"""Seed the built-in roles (catalog.BUILTIN_ROLES) into every tenant: new tenants are cloned
from the migrated template schema, so they start with them. Existing rows are left as the
tenant edited them."""
from django.db import migrations
from django.utils import translation


def seed(apps, schema_editor):
    from permissions.catalog import BUILTIN_ROLES

    Role = apps.get_model("permissions", "Role")
    with translation.override("en"):
        for code, (name, permissions) in BUILTIN_ROLES.items():
            Role.objects.get_or_create(
                code=code, defaults={"name": str(name), "permissions": list(permissions), "is_builtin": True}
            )


class Migration(migrations.Migration):
    dependencies = [("permissions", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
