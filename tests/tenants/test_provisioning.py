"""A tenant schema cloned from the template must be the schema the migrations would have
built. Both are described through the PostgreSQL catalogue and compared; everything is
made inside the test transaction and rolled back with it."""
import logging
import re
import threading

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, connections, transaction
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context

from tenants import cloning, services
from tenants.models import Tenant

REPLAYED = "t_prov_replayed"

# name -> query over schema %(s)s; each row one fact, compared as a sorted list.
CATALOGUE = {
    "relations": """
        SELECT relname, relkind::text, relpersistence::text, obj_description(oid, 'pg_class')
          FROM pg_class WHERE relnamespace = %(s)s::regnamespace""",
    "columns": """
        SELECT c.relname, a.attname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
               format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
               a.attidentity::text, a.attgenerated::text, coll.collname, col_description(c.oid, a.attnum)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
         WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
           AND a.attnum > 0 AND NOT a.attisdropped""",
    "indexes": """
        SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique, i.indisvalid
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE c.relnamespace = %(s)s::regnamespace""",
    "constraints": """
        SELECT t.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid), k.convalidated,
               k.condeferrable, k.condeferred, ix.relname, rn.nspname || '.' || r.relname
          FROM pg_constraint k
          JOIN pg_class t ON t.oid = k.conrelid
          LEFT JOIN pg_class ix ON ix.oid = k.conindid
          LEFT JOIN pg_class r ON r.oid = k.confrelid
          LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
         WHERE k.connamespace = %(s)s::regnamespace""",
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
               s.seqcache, s.seqcycle, ps.last_value, d.deptype::text, tn.nspname || '.' || t.relname, a.attname
          FROM pg_class c
          JOIN pg_sequence s ON s.seqrelid = c.oid
          JOIN pg_sequences ps ON ps.schemaname = %(s)s AND ps.sequencename = c.relname
          LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          LEFT JOIN pg_class t ON t.oid = d.refobjid
          LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
          LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE c.relnamespace = %(s)s::regnamespace AND c.relkind = 'S'""",
    "functions": """
        SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prokind::text,
               p.prosrc, l.lanname, p.provolatile::text, obj_description(p.oid, 'pg_proc')
          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = %(s)s::regnamespace""",
    "triggers": """
        SELECT c.relname, t.tgname, t.tgtype, t.tgenabled::text, p.proname, pn.nspname = %(s)s,
               obj_description(t.oid, 'pg_trigger'), t.tgoldtable, t.tgnewtable
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_proc p ON p.oid = t.tgfoid
          JOIN pg_namespace pn ON pn.oid = p.pronamespace
         WHERE c.relnamespace = %(s)s::regnamespace AND NOT t.tgisinternal""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations",
    "content_types": "SELECT id, app_label, model FROM {schema}.django_content_type",
    "permissions": "SELECT id, content_type_id, codename, name FROM {schema}.auth_permission",
}


def normalise(value, schema):
    """The schema's own name, quoted or not, becomes ``<schema>``; any other stays."""
    if not isinstance(value, str):
        return value
    return re.sub(rf'(?<![\w$"])"?{re.escape(schema)}"?\.', "<schema>.", value)


def describe(schema):
    facts = {}
    with connection.cursor() as cursor:
        for name, query in CATALOGUE.items():
            cursor.execute(query.replace("{schema}", connection.ops.quote_name(schema)), {"s": schema})
            facts[name] = sorted(
                (tuple(normalise(value, schema) for value in row) for row in cursor.fetchall()),
                key=repr,
            )
    return facts


def differences(left, right):
    """{part: (only in left, only in right)} for the parts that differ."""
    return {
        name: (sorted(set(left[name]) - set(right[name]), key=repr), sorted(set(right[name]) - set(left[name]), key=repr))
        for name in left
        if left[name] != right[name]
    }


def replay(schema):
    """The framework's own way: an empty schema, then every tenant migration."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
    call_command("migrate_schemas", schema_name=schema, interactive=False, verbosity=0)
    connection.set_schema_to_public()


@pytest.fixture
def replayed(db):
    replay(REPLAYED)
    facts = describe(REPLAYED)
    assert facts["migrations"] and facts["content_types"] and facts["permissions"]
    return facts


def test_a_cloned_tenant_matches_a_migrated_schema(replayed):
    tenant, _ = services.tenant_create(actor="pytest", slug="prov-clone", name="Clone")
    assert differences(describe(tenant.schema_name), replayed) == {}


def test_the_generic_clone_of_django_tenants_drifts(replayed):
    """Why the fast clone exists besides speed: the generic one (kept only as a fallback)
    renames unique constraints, widens identity sequences and gets history triggers wrong. If this starts failing,
    django-tenants changed and the fallback may deserve another look."""
    CloneSchema().clone_schema(settings.TENANT_BASE_SCHEMA, "t_prov_generic", "DATA", set_connection=False)
    drift = differences(describe("t_prov_generic"), replayed)
    assert sorted(drift) == ["constraints", "indexes", "relations", "sequences", "triggers"]
    generic, migrated = drift["constraints"]
    assert {row[2] for row in generic + migrated} == {"u"}
    assert [row[3] for row in generic] == [row[3] for row in migrated]  # same columns, other names


def test_the_template_itself_matches(replayed):
    assert differences(describe(settings.TENANT_BASE_SCHEMA), replayed) == {}


def _fk_to_content_type(s):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [f"{s}.auth_permission"]
        )
        return cursor.fetchone()[0]


# Each alteration, applied to the replayed schema, must show in the named parts of the comparison.
ALTERATIONS = {
    "dropped index": (["relations", "indexes"], lambda s: [f"DROP INDEX {s}.django_session_expire_date_a5c62663"]),
    "nullability": (["columns"], lambda s: [f"ALTER TABLE {s}.django_session ALTER COLUMN expire_date DROP NOT NULL"]),
    "default on the template's sequence": (
        ["columns", "relations", "sequences"],
        lambda s: [
            f"ALTER TABLE {s}.auth_group ALTER COLUMN id DROP IDENTITY",
            f"ALTER TABLE {s}.auth_group ALTER COLUMN id SET DEFAULT nextval('{settings.TENANT_BASE_SCHEMA}.auth_group_id_seq')",
        ],
    ),
    "foreign key into the template": (
        ["constraints"],
        lambda s: [
            "SET CONSTRAINTS ALL IMMEDIATE",  # the rows the migration wrote have deferred checks pending
            f"ALTER TABLE {s}.auth_permission DROP CONSTRAINT {_fk_to_content_type(s)}, ADD CONSTRAINT fk_elsewhere "
            f"FOREIGN KEY (content_type_id) REFERENCES {settings.TENANT_BASE_SCHEMA}.django_content_type(id) "
            "DEFERRABLE INITIALLY DEFERRED"
        ],
    ),
    "sequence position": (["sequences"], lambda s: [f"ALTER SEQUENCE {s}.django_content_type_id_seq RESTART"]),
    "missing migration row": (["migrations"], lambda s: [f"DELETE FROM {s}.django_migrations WHERE id = 1"]),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_the_comparison_sees_an_altered_copy(replayed, alteration):
    parts, statements = ALTERATIONS[alteration]
    if alteration == "nullability" and connection.pg_version >= 180000:
        parts = parts + ["constraints"]  # PostgreSQL 18 catalogues NOT NULL as a constraint too
    with transaction.atomic():
        with connection.cursor() as cursor:
            for statement in statements(REPLAYED):
                cursor.execute(statement)
        altered = describe(REPLAYED)
        transaction.set_rollback(True)
    assert sorted(differences(altered, replayed)) == sorted(parts)
    assert describe(REPLAYED) == replayed  # rolled back


@pytest.mark.django_db
def test_a_clone_goes_on_numbering_after_the_copied_rows():
    tenant, _ = services.tenant_create(actor="pytest", slug="prov-ids", name="Ids")
    with schema_context(tenant.schema_name):
        top = ContentType.objects.order_by("-id").values_list("id", flat=True).first()
        assert ContentType.objects.create(app_label="bench", model="probe").id > top


@pytest.mark.django_db
def test_cloning_leaves_the_search_path_as_django_tenants_set_it():
    services.tenant_create(actor="pytest", slug="prov-path", name="Path")
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == "public"
    assert connection.schema_name == "public"


@pytest.mark.django_db
def test_views_are_copied_and_read_the_new_schema():
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE VIEW {template}.prov_groups AS SELECT id, name FROM {template}.auth_group")
        cursor.execute(f"CREATE VIEW {template}.prov_group_names AS SELECT name FROM {template}.prov_groups")
        cursor.execute(f"CREATE MATERIALIZED VIEW {template}.prov_counts AS SELECT count(*) AS n FROM {template}.prov_groups")
        cursor.execute(f"CREATE UNIQUE INDEX prov_counts_n ON {template}.prov_counts (n)")
        assert cloning.unsupported(cursor, template) == []
    tenant, _ = services.tenant_create(actor="pytest", slug="prov-views", name="Views")
    assert differences(describe(tenant.schema_name), describe(template)) == {}
    schema = tenant.schema_name
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {schema}.auth_group (name) VALUES ('only here')")
        cursor.execute(f"REFRESH MATERIALIZED VIEW {schema}.prov_counts")
        cursor.execute(f"SELECT (SELECT count(*) FROM {schema}.prov_group_names), (SELECT n FROM {schema}.prov_counts), "
                       f"(SELECT count(*) FROM {template}.prov_group_names)")
        assert cursor.fetchone() == (1, 1, 0)


@pytest.mark.django_db
def test_history_functions_and_triggers_are_copied_and_write_to_the_new_schema():
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        assert cloning.unsupported(cursor, template) == []  # pghistory's triggers need no fallback
    tenant, _ = services.tenant_create(actor="pytest", slug="prov-history", name="History")
    schema = tenant.schema_name
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {schema}.key_accounts_product (code, name, category) VALUES ('p', 'P', 'cloud')")
        cursor.execute(f"INSERT INTO {schema}.org_hierarchy_orglevel (code, name, rank) VALUES ('hq', 'HQ', 0)")
        cursor.execute(f"INSERT INTO {schema}.org_hierarchy_orgunit (path, depth, numchild, code, name, level_id, is_active)"
                       f" SELECT '0001', 1, 0, 'HQ', 'HQ', id, true FROM {schema}.org_hierarchy_orglevel RETURNING id")
        unit = cursor.fetchone()[0]
        cursor.execute(f"SET LOCAL search_path = {schema}, public")  # as django-tenants runs a tenant's queries
        cursor.execute(f"INSERT INTO {schema}.key_accounts_customer (kind, name, industry, size, grade, status, org_unit_id,"
                       " is_national_key_account, is_potential_key_account, is_group, phone, address, credit_rating,"
                       f" created_at, updated_at) VALUES ('enterprise', 'X', '', '', 'C', 'active', {unit}, false, false,"
                       " false, '', '', '', now(), now())")
        cursor.execute(f"SELECT (SELECT count(*) FROM {schema}.key_accounts_customerevent),"
                       f" (SELECT count(*) FROM {template}.key_accounts_customerevent)")
        assert cursor.fetchone() == (1, 0)
        cursor.execute("SELECT set_config('search_path', %s, true)", [connection.schema_name == "public" and "public" or
                                                                     connection.schema_name])


@pytest.mark.django_db
def test_a_template_with_something_the_fast_clone_skips_uses_the_generic_clone(caplog):
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TYPE {template}.prov_mood AS ENUM ('calm', 'busy')")
        assert f"type {template}.prov_mood" in cloning.unsupported(cursor, template)
    with caplog.at_level(logging.WARNING, logger="tenants.cloning"):
        tenant, _ = services.tenant_create(actor="pytest", slug="prov-type", name="Type")
    assert "Generic clone" in caplog.text
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 'busy'::{tenant.schema_name}.prov_mood::text")
        assert cursor.fetchone() == ("busy",)


@pytest.mark.django_db
def test_a_failing_clone_leaves_no_schema(monkeypatch):
    monkeypatch.setattr(cloning, "INDEXES", "SELECT 'CREATE INDEX broken ON no_such_table (x)'")
    with pytest.raises(Exception, match="no_such_table"):
        services.tenant_create(actor="pytest", slug="prov-broken", name="Broken")
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 't_prov_broken'")
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_tenants_can_be_provisioned_concurrently():
    """Threads with connections of their own, committing. The generic clone re-created a type
    in ``public`` on every call, so two at once could fail on pg_type's unique index. The test
    thread stays off the database (its transaction's locks would hold up the clean-up); what
    the threads commit is deleted by a thread at the end."""
    workers, per_worker = 3, 2
    start, errors, found = threading.Barrier(workers), [], {}

    def provision(n):
        start.wait()
        for i in range(per_worker):
            services.tenant_create(actor="pytest", slug=f"prov-conc-{n}-{i}", name="Concurrent")

    def check_and_delete():
        made = list(Tenant.objects.filter(slug__startswith="prov-conc-").order_by("slug"))
        found["count"] = len(made)
        if made:
            found["drift"] = differences(describe(made[-1].schema_name), describe(settings.TENANT_BASE_SCHEMA))
        for tenant in made:
            services.tenant_delete(actor="pytest", tenant=tenant, confirm=tenant.slug)

    def run(target, *args):
        try:
            target(*args)
        except Exception as exc:  # reported by the test's own thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(provision, n)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    cleanup = threading.Thread(target=run, args=(check_and_delete,))
    cleanup.start()
    cleanup.join(timeout=60)
    assert errors == []
    assert found == {"count": workers * per_worker, "drift": {}}
