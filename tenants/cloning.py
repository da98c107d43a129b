"""Copy the template schema into a new tenant schema, fast and exactly.

django-tenants' generic clone re-creates a ~4600-line PL/pgSQL function (and drops and
re-creates a type in ``public``, so two provisionings at once can fail) on every call, and
its copy drifts from what the migrations build: unique constraints get new names, identity
sequences become bigint. What migrations put in a tenant schema is narrow: tables,
sequences, indexes, constraints, views, rows, and the plain functions and triggers that
django-pgtrigger / django-pghistory install for history. For exactly that we build the DDL
from the catalogue in a few queries and run it as one script, keeping every name. Anything
else in the template (types, aggregates, procedures, grants, ...) falls back to the generic
clone with a warning, so the copy is never silently incomplete.

The definitions are read with ``search_path`` set to the template alone: PostgreSQL then
leaves template objects unqualified (``REFERENCES auth_user(id)``, ``nextval('x_seq')``),
and the script runs with ``search_path`` set to the new schema, so every reference lands
on the copy. Objects outside the template stay qualified (``public.x``) and are kept.
"""
import logging

from django.db import connection, transaction
from django_tenants.clone import CloneSchema

logger = logging.getLogger(__name__)

# Every query starts from the objects that depend on the template's namespace, found through
# pg_depend's index: filtering pg_class on relnamespace would scan the whole catalogue, which
# grows with every tenant (about 80 relations each). Indexes hang off their tables instead.
OBJECTS = """
WITH objects AS (SELECT classid, objid, objsubid FROM pg_depend
                  WHERE refclassid = 'pg_namespace'::regclass AND refobjid = %(src)s::regnamespace),
     rels AS (SELECT c.* FROM objects o JOIN pg_class c ON c.oid = o.objid WHERE o.classid = 'pg_class'::regclass)
"""

# Each row names something this module does not copy; any row means "use the generic clone".
UNSUPPORTED = OBJECTS + """
SELECT pg_describe_object(classid, objid, objsubid) FROM objects
 WHERE (classid <> 'pg_class'::regclass OR objid NOT IN (SELECT oid FROM rels WHERE relkind IN ('r', 'S', 'v', 'm')))
   AND NOT (classid = 'pg_proc'::regclass AND objid IN (SELECT oid FROM pg_proc WHERE prokind = 'f' AND proconfig IS NULL
                                                          AND proacl IS NULL AND proowner = current_user::regrole))
UNION ALL SELECT 'unlogged, partitioned or inherited table ' || c.relname FROM rels c
 WHERE c.relpersistence <> 'p' OR c.relispartition OR EXISTS (SELECT FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid)
UNION ALL SELECT 'grants, options, row security or owner of ' || relname FROM rels
 WHERE relacl IS NOT NULL OR reloptions IS NOT NULL OR relrowsecurity OR relowner <> current_user::regrole
UNION ALL SELECT 'rule ' || r.rulename FROM rels c JOIN pg_rewrite r ON r.ev_class = c.oid WHERE r.rulename <> '_RETURN'
UNION ALL SELECT 'column default or comment on view ' || c.relname FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relkind IN ('v', 'm') AND a.attnum > 0 AND (a.atthasdef OR col_description(c.oid, a.attnum) IS NOT NULL)
UNION ALL SELECT 'sequence ' || s.relname || ' owned outside the schema' FROM rels s
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid
 WHERE s.relkind = 'S' AND t.relnamespace <> s.relnamespace
"""

# Tables without defaults, identity, indexes or constraints: those come later, after the rows.
TABLES = OBJECTS + """
SELECT format('CREATE TABLE %%I.%%I (LIKE %%I.%%I INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS)',
              %(dst)s, relname, %(src)s, relname),
       CASE WHEN obj_description(oid, 'pg_class') IS NOT NULL
            THEN format('COMMENT ON TABLE %%I.%%I IS %%L', %(dst)s, relname, obj_description(oid, 'pg_class')) END
  FROM rels WHERE relkind = 'r' ORDER BY oid
"""

ROWS = OBJECTS + """
SELECT format('INSERT INTO %%I.%%I (%%s) SELECT %%s FROM %%I.%%I', %(dst)s, c.relname, cols, cols, %(src)s, c.relname)
  FROM rels c
  CROSS JOIN LATERAL (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols FROM pg_attribute
                       WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '') a
 WHERE c.relkind = 'r' ORDER BY c.oid
"""

# Sequences: identity ones are made with their column, the others (serial, standalone) here.
# setval carries the template's position over, so the next id never collides with a copied row.
SEQUENCES = OBJECTS + """
SELECT CASE WHEN d.deptype = 'i' THEN
         format('ALTER TABLE %%I.%%I ALTER COLUMN %%I ADD GENERATED %%s AS IDENTITY (SEQUENCE NAME %%I.%%I %%s)',
                %(dst)s, t.relname, a.attname, CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END,
                %(dst)s, c.relname, opts)
       ELSE format('CREATE SEQUENCE %%I.%%I AS %%s %%s', %(dst)s, c.relname, format_type(s.seqtypid, NULL), opts) END,
       CASE WHEN d.deptype = 'a' THEN format('ALTER SEQUENCE %%I.%%I OWNED BY %%I.%%I.%%I', %(dst)s, c.relname, %(dst)s, t.relname, a.attname) END,
       CASE WHEN last_value IS NOT NULL THEN format('SELECT setval(%%L, %%s, true)', quote_ident(%(dst)s) || '.' || quote_ident(c.relname), last_value) END
  FROM rels c
  JOIN pg_sequence s ON s.seqrelid = c.oid
  CROSS JOIN LATERAL pg_sequence_last_value(c.oid) AS last_value
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_class t ON t.oid = d.refobjid
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  -- No AS type here: an identity sequence takes its column's type.
  CROSS JOIN LATERAL (SELECT format('INCREMENT BY %%s MINVALUE %%s MAXVALUE %%s START WITH %%s CACHE %%s %%s',
                                    s.seqincrement, s.seqmin, s.seqmax, s.seqstart,
                                    s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END) AS opts) o
 WHERE c.relkind = 'S'
 ORDER BY d.deptype = 'i', c.oid
"""

# Read with search_path = template: sequence and table references come out unqualified.
DEFAULTS = OBJECTS + """
SELECT format('ALTER TABLE %%I.%%I ALTER COLUMN %%I SET DEFAULT %%s', %(dst)s, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid))
  FROM rels c
  JOIN pg_attrdef d ON d.adrelid = c.oid
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE c.relkind = 'r' AND a.attgenerated = '' AND NOT a.attisdropped
 ORDER BY c.oid, a.attnum
"""

# Keys first (foreign keys need the referenced unique index), foreign keys last.
CONSTRAINTS = OBJECTS + """
SELECT format('ALTER TABLE %%I.%%I ADD CONSTRAINT %%I %%s', %(dst)s, c.relname, k.conname, pg_get_constraintdef(k.oid))
  FROM rels c JOIN pg_constraint k ON k.conrelid = c.oid
 WHERE c.relkind = 'r'
 ORDER BY k.contype = 'f', k.oid
"""

# Views and materialized views with the relations each one reads (for the creation order).
VIEWS = OBJECTS + """
SELECT c.oid,
       format(CASE c.relkind WHEN 'v' THEN 'CREATE VIEW %%I.%%I AS %%s' ELSE 'CREATE MATERIALIZED VIEW %%I.%%I AS %%s WITH %%s DATA' END,
              %(dst)s, c.relname, rtrim(pg_get_viewdef(c.oid, true), E'; \\n'), CASE WHEN c.relispopulated THEN '' ELSE 'NO' END),
       CASE WHEN obj_description(c.oid, 'pg_class') IS NOT NULL
            THEN format('COMMENT ON %%s %%I.%%I IS %%L', CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END,
                        %(dst)s, c.relname, obj_description(c.oid, 'pg_class')) END,
       ARRAY(SELECT DISTINCT d.refobjid FROM pg_rewrite r
               JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
              WHERE r.ev_class = c.oid AND d.refobjid <> c.oid)
  FROM rels c WHERE c.relkind IN ('v', 'm') ORDER BY c.oid
"""

# Indexes that no constraint owns (those came with their constraint).
INDEXES = OBJECTS + """
SELECT pg_get_indexdef(i.indexrelid, 0, true)
  FROM rels c JOIN pg_index i ON i.indrelid = c.oid
 WHERE NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
 ORDER BY i.indexrelid
"""


# Functions by their parts: pg_get_functiondef names the template schema in the header, and
# the body (run with the caller's search_path) names tables unqualified.
FUNCTIONS = OBJECTS + """
SELECT format('CREATE FUNCTION %%I.%%I(%%s) ', %(dst)s, p.proname, pg_get_function_arguments(p.oid))
       || substr(def, strpos(def, E'\n') + 1),
       CASE WHEN obj_description(p.oid, 'pg_proc') IS NOT NULL
            THEN format('COMMENT ON FUNCTION %%I.%%I(%%s) IS %%L', %(dst)s, p.proname,
                        pg_get_function_identity_arguments(p.oid), obj_description(p.oid, 'pg_proc')) END
  FROM objects o JOIN pg_proc p ON p.oid = o.objid
  CROSS JOIN LATERAL pg_get_functiondef(p.oid) AS def
 WHERE o.classid = 'pg_proc'::regclass ORDER BY p.oid
"""

# Triggers last, after the rows are in (they must not fire on the copy). Read with search_path
# = template, so table and function come out unqualified.
TRIGGERS = OBJECTS + """
SELECT pg_get_triggerdef(t.oid, true),  -- "pretty" leaves visible names unqualified
       CASE WHEN obj_description(t.oid, 'pg_trigger') IS NOT NULL
            THEN format('COMMENT ON TRIGGER %%I ON %%I.%%I IS %%L', t.tgname, %(dst)s, c.relname,
                        obj_description(t.oid, 'pg_trigger')) END,
       CASE t.tgenabled WHEN 'D' THEN format('ALTER TABLE %%I.%%I DISABLE TRIGGER %%I', %(dst)s, c.relname, t.tgname)
                        WHEN 'R' THEN format('ALTER TABLE %%I.%%I ENABLE REPLICA TRIGGER %%I', %(dst)s, c.relname, t.tgname)
                        WHEN 'A' THEN format('ALTER TABLE %%I.%%I ENABLE ALWAYS TRIGGER %%I', %(dst)s, c.relname, t.tgname) END
  FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid
 WHERE NOT t.tgisinternal ORDER BY t.oid
"""


def unsupported(cursor, source):
    cursor.execute(UNSUPPORTED, {"src": source})
    return [row[0] for row in cursor.fetchall()]


def _statements(cursor, query, params):
    cursor.execute(query, params)
    return [statement for row in cursor.fetchall() for statement in row if statement]


def _views(cursor, params):
    """View statements, each after the views it reads."""
    cursor.execute(VIEWS, params)
    views = {oid: (create, comment, set(reads)) for oid, create, comment, reads in cursor.fetchall()}
    done, ordered = set(), []

    def visit(oid):
        if oid in done:
            return
        done.add(oid)
        create, comment, reads = views[oid]
        for other in sorted(reads & views.keys()):
            visit(other)
        ordered.extend(statement for statement in (create, comment) if statement)

    for oid in sorted(views):
        visit(oid)
    return ordered


def _set_search_path(cursor, value):
    # Local to the transaction, and put back before returning: django-tenants caches the
    # search_path it set and would not notice a change.
    cursor.execute("SELECT set_config('search_path', %s, true)", [value])


def build_script(cursor, source, target):
    """The statements that make ``target`` a copy of ``source`` (which must be supported)."""
    params = {"src": source, "dst": target}
    cursor.execute("SELECT current_setting('search_path'), quote_ident(%s), quote_ident(%s)", [source, target])
    previous, source_ident, target_ident = cursor.fetchone()
    # On an error the transaction (or savepoint) rolls back, and the setting with it.
    _set_search_path(cursor, source_ident)
    parts = [
        f"CREATE SCHEMA {target_ident}",
        *_statements(cursor, TABLES, params),
        *_statements(cursor, ROWS, params),
        *_statements(cursor, SEQUENCES, params),
        *_statements(cursor, DEFAULTS, params),
        *_statements(cursor, CONSTRAINTS, params),
        *_views(cursor, params),
        *_statements(cursor, INDEXES, params),
        *_statements(cursor, FUNCTIONS, params),
        *_statements(cursor, TRIGGERS, params),
    ]
    _set_search_path(cursor, previous)
    return parts, target_ident, previous


@transaction.atomic
def clone_schema(source, target):
    """Create schema ``target`` as a copy of ``source``: structure, rows and sequence positions.
    Atomic on its own, and part of the caller's transaction when there is one."""
    with connection.cursor() as cursor:
        reasons = unsupported(cursor, source)
        if reasons:
            logger.warning("Generic clone of %s: fast clone does not copy %s", source, "; ".join(reasons[:5]))
            # It drops and re-creates a type in public: one at a time, or concurrent calls collide.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('kam.clone_schema'))")
            CloneSchema().clone_schema(source, target, "DATA", set_connection=False)
            return
        parts, target_ident, previous = build_script(cursor, source, target)
        cursor.execute(";\n".join([
            f"SELECT set_config('search_path', {_literal(target_ident)}, true)",
            *parts,
            f"SELECT set_config('search_path', {_literal(previous)}, true)",
        ]))


def _literal(text):
    return "'" + text.replace("'", "''") + "'"
