"""The set-based half of an import, chunk by chunk on the caller's transaction: COPY the chunk's
checked rows into a staging table, find what Python cannot see (repeats across the whole file,
values that belong to other customers, customers outside the importer's scope) as joins, and
write the chunk as one INSERT and one UPDATE plus the phone index.

The tables are TEMP ... ON COMMIT DROP: private to the import's connection, never in the WAL,
and gone with the transaction however it ends (commit, rollback, a killed worker). Rows are
matched to the archive by the spec's key (external id or credit code); a row keyed by external
id may also adopt an existing customer that has its credit code and no external id yet. An
UPDATE only touches customers whose imported fields differ, so re-importing a file writes
nothing and adds no history.

Repeats inside the file: every chunk's unique values are appended (with their lines, no index)
to a ``keys`` table, grouped once at the end for the report ("the same external id as line
N"). A commit must not write a repeat before that report exists, so each chunk is also checked
for repeats inside itself, and for rows meeting a customer this very import already wrote
(its ``updated_at`` is the import's own timestamp): either stops the writing, and the final
grouping then reports the lines.

Statements run on the raw psycopg cursor: the history context is attached to the transaction
once (kam.history.attach), and the pghistory triggers (statement level) record every inserted
and changed row with it.
"""
import csv
import io
import time

from django.db import connection
from django.utils.translation import gettext as _

from key_accounts.models import Customer, PhoneNumber

ROWS = "_kam_import_rows"
MATCHED = "_kam_import_matched"
KEYS = "_kam_import_keys"
TABLES = f"{ROWS}, {MATCHED}, {KEYS}"
UNIQUE = ("external_id", "credit_code")
GIN_PENDING_KB = 65536
GIN_CLEAN_MEM = "64MB"


def _column(name):
    return Customer._meta.get_field(name).column


def _sql_type(name):
    return Customer._meta.get_field(name).db_type(connection)


class Staging:
    def __init__(self, cursor, fields, *, key, with_phones, now):
        self.cursor = cursor  # raw psycopg cursor inside the import's transaction
        self.now = now  # the import's timestamp: created_at/updated_at of every row it writes
        self.fields = fields
        self.columns = [_column(name) for name in fields]
        self.key = key
        self.with_phones = with_phones
        self.gin = []  # GIN indexes filled in bulk (bulk_gin)
        self.unique = [name for name in UNIQUE if name in fields]
        self.customer = Customer._meta.db_table
        self.phone_table = PhoneNumber._meta.db_table
        names = ["line", *(f'"{col}"' for col in self.columns), *(["phone_digits"] if with_phones else [])]
        # CSV with every value quoted: "" is an empty text, and FORCE_NULL makes it NULL where
        # a column may be NULL (the Python side writes None as "").
        nullable = [f'"{_column(name)}"' for name in fields if Customer._meta.get_field(name).null]
        force_null = f", FORCE_NULL ({', '.join(nullable)})" if nullable else ""
        self.copy_sql = f"COPY {ROWS} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv{force_null})"

    def create(self):
        columns = ", ".join(f'"{col}" {_sql_type(name)}' for name, col in zip(self.fields, self.columns))
        phones = ", phone_digits text[]" if self.with_phones else ""
        self.cursor.execute(f"DROP TABLE IF EXISTS {TABLES}")
        self.cursor.execute(f"CREATE TEMP TABLE {ROWS} (line integer NOT NULL, {columns}{phones}) ON COMMIT DROP")
        keys = "".join(f', "{_column(name)}" text' for name in self.unique)
        self.cursor.execute(f"CREATE TEMP TABLE {KEYS} (line integer NOT NULL{keys}) ON COMMIT DROP")
        self.cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [self.customer])
        self.sequence = self.cursor.fetchone()[0]

    def prefer_index_lookups(self, on=True):
        """A chunk is a few thousand rows against an archive of up to millions (whose
        statistics lag behind a big import): look each row up by index instead of hashing
        the whole table once per chunk. Off again for the final grouping of the whole file."""
        value = "off" if on else "on"
        self.cursor.execute(f"SET LOCAL enable_hashjoin = {value}")
        self.cursor.execute(f"SET LOCAL enable_mergejoin = {value}")

    def gin_indexes(self):
        """The customer table's GIN indexes (the name's trigram index) that this role may clean."""
        self.cursor.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = 'gin' "
            "AND pg_has_role(c.relowner, 'USAGE')",
            [self.customer],
        )
        return [name for (name,) in self.cursor.fetchall()]

    def bulk_gin(self):
        """Let new GIN entries (trigrams of names) gather in the index's pending list 64 MB at
        a time instead of 4 MB, merged into the index in bigger sorted batches; ``clean_gin``
        merges the last batch before the commit, so no later writer or search meets it.
        Entries in the pending list are found by searches too, so the index is consistent all
        along. Bounded, because a concurrent writer may find the list over its own limit and
        merge it. Only for indexes this role owns (it must clean them)."""
        self.gin = self.gin_indexes()
        if self.gin:
            self.cursor.execute(f"SET LOCAL gin_pending_list_limit = {GIN_PENDING_KB}")

    def clean_gin(self):
        if self.gin:
            self.cursor.execute(f"SET LOCAL maintenance_work_mem = '{GIN_CLEAN_MEM}'")
            for name in self.gin:
                self.cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [name])
            self.cursor.execute("SET LOCAL gin_pending_list_limit TO DEFAULT")

    def drop(self):
        """Drop the tables now (a committed import inside a longer transaction, e.g. a test)."""
        self.cursor.execute(f"DROP TABLE IF EXISTS {TABLES}")

    # --- One chunk ----------------------------------------------------------------------------

    @staticmethod
    def payload(rows):
        """The COPY text of ``rows`` (line first, then the values in ``fields`` order, then the
        phone digits as an array literal), made by the reading side (see run.py)."""
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
        return buffer.getvalue()

    def load(self, payload):
        """Replace the staged chunk with the rows of ``payload``; keep its unique values."""
        self.cursor.execute(f"TRUNCATE {ROWS}")
        with self.cursor.copy(self.copy_sql) as copy:
            copy.write(payload)
        if self.unique:
            cols = ", ".join(f'"{_column(name)}"' for name in self.unique)
            self.cursor.execute(f"INSERT INTO {KEYS} (line, {cols}) SELECT line, {cols} FROM {ROWS}")

    def repeats_inside(self):
        """True when a unique value occurs twice in the staged chunk (writing it would break
        the unique constraint: the final ``duplicates()`` names the lines)."""
        checks = [f'(SELECT "{_column(n)}" FROM {ROWS} WHERE "{_column(n)}" IS NOT NULL GROUP BY 1 HAVING count(*) > 1)'
                  for n in self.unique]
        if not checks:
            return False
        self.cursor.execute("SELECT " + " OR ".join(f"EXISTS {check}" for check in checks))
        return self.cursor.fetchone()[0]

    def duplicates(self):
        """``(line, field, first_line)`` for each row of the whole file repeating a unique value
        of an earlier row (once every chunk is staged)."""
        found = []
        for name in self.unique:
            col = _column(name)
            self.cursor.execute(
                f'SELECT k.line, min(k.line) OVER (PARTITION BY k."{col}") FROM {KEYS} k '
                f'JOIN (SELECT "{col}" FROM {KEYS} WHERE "{col}" IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d '
                f'USING ("{col}") ORDER BY 1'
            )
            found += [(line, name, first) for line, first in self.cursor.fetchall() if line != first]
        return found

    def match(self):
        """Join the staged rows to the archive: ``customer_id`` (the customer a row updates, if
        any), its current unit and phone, and the owners of the row's unique values."""
        key = _column(self.key)
        joins = [f'LEFT JOIN {self.customer} k ON k."{key}" = r."{key}"']
        customer_id, old_unit, old_phone = "k.id", "k.org_unit_id", "k.phone"
        # ``touched``: the row meets a customer this import already wrote (a repeat in the file).
        owners, touched = [], ["k.updated_at = %(now)s"]
        for name in self.unique:
            if name != self.key:
                joins.append(f'LEFT JOIN {self.customer} o_{name} ON o_{name}."{_column(name)}" = r."{_column(name)}"')
                owners.append(f"o_{name}.id AS owner_{name}, o_{name}.updated_at = %(now)s AS owner_{name}_touched")
                touched.append(f"o_{name}.updated_at = %(now)s")
        if self.key == "external_id" and "credit_code" in self.fields:
            # Adopt the owner of the credit code when it has no external id yet (e.g. entered by hand).
            adopt = "CASE WHEN k.id IS NULL AND o_credit_code.external_id IS NULL THEN o_credit_code"
            customer_id = f"coalesce(k.id, {adopt}.id END)"
            old_unit = f"coalesce(k.org_unit_id, {adopt}.org_unit_id END)"
            old_phone = f"coalesce(k.phone, {adopt}.phone END)"
        phone = f", {old_phone} IS DISTINCT FROM r.phone AS phone_changed" if self.with_phones else ""
        self.cursor.execute(f"DROP TABLE IF EXISTS {MATCHED}")
        self.cursor.execute(
            f"CREATE TEMP TABLE {MATCHED} ON COMMIT DROP AS SELECT r.*, {customer_id} AS customer_id, {old_unit} AS old_unit, "
            f"coalesce({' OR '.join(touched)}, false) AS touched{phone}{''.join(', ' + o for o in owners)} "
            f"FROM {ROWS} r {' '.join(joins)}",
            {"now": self.now},
        )

    def touched(self):
        """True when a staged row meets a customer written earlier by this import."""
        self.cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {MATCHED} WHERE touched)")
        return self.cursor.fetchone()[0]

    def conflicts(self):
        """``(line, field)`` where a unique value already belongs to another customer."""
        found = []
        for name in self.unique:
            if name != self.key:
                # An owner written by this import is a repeat in the file: duplicates() reports it.
                self.cursor.execute(
                    f"SELECT line FROM {MATCHED} WHERE owner_{name} IS NOT NULL AND owner_{name} IS DISTINCT FROM customer_id "
                    f"AND owner_{name}_touched IS NOT TRUE ORDER BY 1"
                )
                found += [(line, name) for (line,) in self.cursor.fetchall()]
        return found

    def outside(self, code_units):
        """Lines of rows that update a customer whose unit is not among ``code_units``."""
        self.cursor.execute(
            f"SELECT line FROM {MATCHED} WHERE customer_id IS NOT NULL "
            f"AND NOT old_unit IN (SELECT unnest(%s::bigint[])) ORDER BY 1",
            [sorted(code_units)],
        )
        return [line for (line,) in self.cursor.fetchall()]

    def moved_outside(self, assign_units):
        """Lines of rows that move an existing customer to another unit without "customer.assign"
        at both units."""
        if "org_unit" not in self.fields:
            return []
        self.cursor.execute(
            f"SELECT line FROM {MATCHED} WHERE customer_id IS NOT NULL AND org_unit_id <> old_unit "
            f"AND NOT (old_unit IN (SELECT unnest(%s::bigint[])) AND org_unit_id IN (SELECT unnest(%s::bigint[]))) ORDER BY 1",
            [sorted(assign_units), sorted(assign_units)],
        )
        return [line for (line,) in self.cursor.fetchall()]

    def _differs(self, left="c", right="m"):
        cols = [f'"{col}"' for col in self.columns]
        return f"ROW({', '.join(f'{left}.{c}' for c in cols)}) IS DISTINCT FROM ROW({', '.join(f'{right}.{c}' for c in cols)})"

    def counts(self):
        """``(created, updated, unchanged)`` as writing the chunk would do them."""
        self.cursor.execute(
            f"SELECT count(*) FILTER (WHERE m.customer_id IS NULL), count(m.customer_id), "
            f"count(*) FILTER (WHERE m.customer_id IS NOT NULL AND {self._differs()}) "
            f"FROM {MATCHED} m LEFT JOIN {self.customer} c ON c.id = m.customer_id"
        )
        created, existing, updated = self.cursor.fetchone()
        return created, updated, existing - updated

    # --- Write --------------------------------------------------------------------------------

    def write(self, timings=None):
        """Insert the chunk's new customers, update the changed ones, re-index changed phones.
        Returns ``(created, updated, unchanged)``; ``timings`` (a dict) adds up each step's seconds."""
        timings = timings if timings is not None else {}
        started = time.perf_counter()

        def lap(label):
            nonlocal started
            timings[label] = round(timings.get(label, 0) + time.perf_counter() - started, 3)
            started = time.perf_counter()

        defaults = {}
        for model_field in Customer._meta.concrete_fields:
            if model_field.primary_key or model_field.name in self.fields:
                continue
            if model_field.name in ("created_at", "updated_at"):
                defaults[model_field.column] = self.now
            else:
                defaults[model_field.column] = model_field.get_db_prep_save(model_field.get_default(), connection)
        cols = [f'"{col}"' for col in self.columns]
        insert_cols = cols + [f'"{col}"' for col in defaults]
        values = f"{', '.join('m.' + c for c in cols)}{''.join(', %s' for _ in defaults)}"
        if self.with_phones:
            # New customers get their ids here (in file order), so their phone rows are written
            # from the same staged rows in the same statement: no second look-up by key.
            self.cursor.execute(
                f"WITH m AS MATERIALIZED (SELECT nextval(%s::regclass) AS id, r.* FROM "
                f"(SELECT * FROM {MATCHED} WHERE customer_id IS NULL ORDER BY line) r), "
                f"written AS (INSERT INTO {self.customer} (id, {', '.join(insert_cols)}) SELECT m.id, {values} FROM m RETURNING 1), "
                f"phones AS (INSERT INTO {self.phone_table} (customer_id, contact_id, digits, reversed_digits) "
                f"SELECT m.id, NULL, d.digits, reverse(d.digits) FROM m CROSS JOIN LATERAL unnest(m.phone_digits) AS d(digits)) "
                f"SELECT count(*) FROM written",
                [self.sequence, *defaults.values()],
            )
            created = self.cursor.fetchone()[0]
        else:
            self.cursor.execute(
                f"INSERT INTO {self.customer} ({', '.join(insert_cols)}) "
                f"SELECT {values} FROM {MATCHED} m WHERE m.customer_id IS NULL ORDER BY m.line",
                list(defaults.values()),
            )
            created = self.cursor.rowcount
        lap("insert")
        self.cursor.execute(f"SELECT count(customer_id) FROM {MATCHED}")
        existing = self.cursor.fetchone()[0]
        updated = 0
        if existing:
            self.cursor.execute(
                f"UPDATE {self.customer} c SET {', '.join(f'{c} = m.{c}' for c in cols)}, updated_at = %s "
                f"FROM {MATCHED} m WHERE c.id = m.customer_id AND {self._differs()}",
                [self.now],
            )
            updated = self.cursor.rowcount
        lap("update")
        if self.with_phones:
            self._reindex_phones()
            lap("phones")
        return created, updated, existing - updated

    def _reindex_phones(self):
        """The own numbers (not their contacts') of the updated customers whose main phone
        changed, in the phone search index (new customers got theirs with the insert)."""
        self.cursor.execute(f"SELECT customer_id FROM {MATCHED} WHERE customer_id IS NOT NULL AND phone_changed")
        changed = [customer_id for (customer_id,) in self.cursor.fetchall()]
        if not changed:
            return
        # By id (a chunk's worth at most): an index scan of the phone table, never a full one.
        self.cursor.execute(
            f"DELETE FROM {self.phone_table} WHERE customer_id = ANY(%s) AND contact_id IS NULL", [changed]
        )
        self.cursor.execute(
            f"INSERT INTO {self.phone_table} (customer_id, contact_id, digits, reversed_digits) "
            f"SELECT m.customer_id, NULL, d.digits, reverse(d.digits) FROM {MATCHED} m "
            f"CROSS JOIN LATERAL unnest(m.phone_digits) AS d(digits) WHERE m.customer_id IS NOT NULL AND m.phone_changed"
        )


def describe(kind, field_name):
    """The reason text for a set-based finding."""
    label = Customer._meta.get_field(field_name).verbose_name
    if kind == "duplicate":
        return _("The same %(field)s as line %%(first)d.") % {"field": label}
    if kind == "conflict":
        return _("This %(field)s already belongs to another customer.") % {"field": label}
    if kind == "outside":
        return _("This customer exists in a unit where you may not change customers.")
    if kind == "moved":
        return _("Moving this customer to another unit needs the assign permission at both units.")
    raise ValueError(kind)
