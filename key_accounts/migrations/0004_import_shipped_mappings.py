"""Seed the shipped column mappings (key_accounts/data/mapping_*.json) into the template and
every tenant schema; new tenants get them with the clone. Existing mappings of the same name are
left as the tenant edited them."""
import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data"


def seed(apps, schema_editor):
    ColumnMapping = apps.get_model("key_accounts", "ColumnMapping")
    for path in sorted(DATA.glob("mapping_*.json")):
        shipped = json.loads(path.read_text(encoding="utf-8"))
        ColumnMapping.objects.get_or_create(
            name=shipped["name"], defaults={"description": shipped["description"], "spec": shipped["spec"]}
        )


def unseed(apps, schema_editor):
    ColumnMapping = apps.get_model("key_accounts", "ColumnMapping")
    names = [json.loads(p.read_text(encoding="utf-8"))["name"] for p in DATA.glob("mapping_*.json")]
    ColumnMapping.objects.filter(name__in=names, created_by__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("key_accounts", "0003_import_jobs_and_row_errors")]
    operations = [migrations.RunPython(seed, unseed)]
