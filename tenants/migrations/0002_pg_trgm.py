"""pg_trgm for customer name search. Extensions are per database: created once, in public, where
every tenant's search_path finds its operator classes. Tenant migrations never create it (an
extension made inside a tenant schema would tie that schema to it)."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
