"""Customer import: a generated CSV through key_accounts.importing, and the same 100,000 rows
through django-import-export for comparison.

    .venv/bin/python -m bench.imports [--scale small|full] [--rows N] [--library-rows N]

On a scratch database of its own (``<DATABASE_URL's name>_imports``) with the 2,000-unit bench
tree: a CSV of enterprise customers (external id, Chinese name, valid credit code, kind,
industry, status, unit code over all 2,000 units, mobile phone, address; 100,000 rows small,
1,000,000 full) is checked (dry run), imported (commit) and imported again (nothing changes),
each in a child process of its own, as an importer holding a province-manager role at HQ.
Rates are rows of the file per second of the whole pass (read, check, COPY, set-based checks,
write with history and phone index); peak RSS is the child's ``ru_maxrss``. The first
``--library-rows`` rows then go through django-import-export (bulk mode, cached instance
loader) into a fresh tenant, and through our import into another, for the same-size figure.
Prints one JSON object per line on stdout; details go to stderr.
"""
import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import emit, load_tree, log, scratch_database, scratch_tenant, setup_django, tree_rows

ROWS = {"small": 100_000, "full": 1_000_000}
LIBRARY_ROWS = 100_000
IMPORTER = "importer@bench.example"
HEADER = ["客户编号", "客户名称", "统一社会信用代码", "客户类型", "行业", "状态", "归属单位", "电话", "地址"]
SPEC = {
    "key": "external_id",
    "columns": {
        "客户编号": {"field": "external_id"},
        "客户名称": {"field": "name"},
        "统一社会信用代码": {"field": "credit_code"},
        "客户类型": {"field": "kind", "values": {"企业": "enterprise", "政府": "government", "事业单位": "institution"}},
        "行业": {"field": "industry"},
        "状态": {"field": "status", "values": {"在网": "active", "潜在": "prospect", "流失": "churned"}},
        "归属单位": {"field": "org_unit"},
        "电话": {"field": "phone"},
        "地址": {"field": "address"},
    },
}
WORDS = ["华信", "东方", "瑞丰", "中科", "恒通", "金桥", "远航", "新元", "天成", "海纳", "博源", "宏图", "联创", "星河"]
TRADES = [("科技", "I"), ("物流", "G"), ("制造", "C"), ("建设", "E"), ("贸易", "F"), ("医疗", "Q"), ("教育", "P"), ("能源", "D")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(ROWS), default="small")
    parser.add_argument("--rows", type=int, help="rows in the file (default 100,000 small, 1,000,000 full)")
    parser.add_argument("--library-rows", type=int, default=LIBRARY_ROWS, help="rows through django-import-export")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one import pass and report
    args = parser.parse_args(argv)
    args.rows = args.rows or ROWS[args.scale]
    args.library_rows = min(args.library_rows, args.rows)
    return args


# --- The file ---------------------------------------------------------------------------------

def write_csv(path, rows, unit_codes, seed=7):
    """``rows`` valid enterprise customers, deterministic for ``seed``."""
    from key_accounts.validators import ALPHABET, credit_code_check_char

    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for n in range(rows):
            unit = unit_codes[rng.randrange(len(unit_codes))]
            trade, industry = TRADES[rng.randrange(len(TRADES))]
            kind = "企业" if rng.random() < 0.8 else ("政府" if rng.random() < 0.5 else "事业单位")
            name = f"{WORDS[rng.randrange(len(WORDS))]}{WORDS[rng.randrange(len(WORDS))]}{trade}有限公司第{n}分部"
            body = "91" + f"{110000 + n % 890000:06d}" + "".join(ALPHABET[(n // 31 ** i) % 31] for i in range(9))
            credit = body + credit_code_check_char(body)
            phone = f"1{rng.choice('3456789')}{rng.randrange(10 ** 9):09d}"
            status = "在网" if rng.random() < 0.7 else ("潜在" if rng.random() < 0.6 else "流失")
            out.writerow([f"BENCH{n:08d}", name, credit, kind, industry, status, unit, phone, f"{unit} 路 {n % 997} 号"])


# --- One import pass in a child process ----------------------------------------------------------

def child(args):
    """Run one pass (given as JSON in --child) and print its figures as one JSON line."""
    task = json.loads(args.child)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django_tenants.utils import schema_context

    from key_accounts.importing.run import ErrorLog, run_import

    with schema_context(task["schema"]):
        actor = get_user_model().objects.get(username=IMPORTER)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        errors = ErrorLog()
        python_before, postgres_before = own_cpu(), process_cpu(backend)
        started = time.perf_counter()
        outcome = run_import(actor=actor, path=task["path"], name="bench.csv", raw_spec=SPEC, commit=task["commit"], errors=errors)
        seconds = time.perf_counter() - started
        python_cpu, postgres_after = own_cpu() - python_before, process_cpu(backend)
        errors.file.seek(0)
        first_errors = errors.file.read(2000)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "rows": outcome.rows, "created": outcome.created, "updated": outcome.updated, "unchanged": outcome.unchanged,
        "errors": outcome.errors, "first_errors": first_errors, "committed": outcome.committed, "seconds": seconds,
        "timings": outcome.timings, "peak_rss_mb": peak_kb / 1024, "python_cpu_s": python_cpu,
        "postgres_cpu_s": postgres_after - postgres_before if postgres_after is not None else None,
        "load_avg": os.getloadavg()[0],
    }), flush=True)


def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid):
    """CPU seconds of a local process (the PostgreSQL backend of the import), or None when the
    server is not on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(schema, path, commit):
    task = json.dumps({"schema": schema, "path": str(path), "commit": commit})
    done = subprocess.run(
        [sys.executable, "-m", "bench.imports", "--child", task], capture_output=True, text=True, env=os.environ.copy()
    )
    if done.returncode != 0:
        raise RuntimeError(f"import child failed:\n{done.stderr[-5000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = f"CPU: Python {result['python_cpu_s']:.1f}s"
    if result["postgres_cpu_s"] is not None:
        cpu += f", PostgreSQL backend {result['postgres_cpu_s']:.1f}s"
    log(f"  {'commit' if commit else 'dry run'}: {result['rows']} rows in {result['seconds']:.2f}s "
        f"({result['rows'] / result['seconds']:,.0f} rows/s), created {result['created']}, updated {result['updated']}, "
        f"unchanged {result['unchanged']}, errors {result['errors']}, peak RSS {result['peak_rss_mb']:.0f} MB; {cpu}; "
        f"load average {result['load_avg']:.1f}; {result['timings']}")
    if result["errors"]:
        raise RuntimeError(f"the generated file has errors:\n{result['first_errors']}")
    return result


# --- django-import-export ----------------------------------------------------------------------

def library_import(schema, path):
    """The same rows through django-import-export's ModelResource: bulk writes, cached instance
    loader, units by code through ForeignKeyWidget; in one transaction with history context."""
    import tablib
    from django.contrib.auth import get_user_model
    from django_tenants.utils import schema_context
    from import_export import fields, resources, widgets
    from import_export.instance_loaders import CachedInstanceLoader

    from kam import history
    from key_accounts.models import Customer
    from org_hierarchy.models import OrgUnit

    columns = {entry["field"]: name for name, entry in SPEC["columns"].items()}

    class CustomerResource(resources.ModelResource):
        external_id = fields.Field(attribute="external_id", column_name=columns["external_id"])
        name = fields.Field(attribute="name", column_name=columns["name"])
        credit_code = fields.Field(attribute="credit_code", column_name=columns["credit_code"])
        kind = fields.Field(attribute="kind", column_name=columns["kind"])
        industry = fields.Field(attribute="industry", column_name=columns["industry"])
        status = fields.Field(attribute="status", column_name=columns["status"])
        org_unit = fields.Field(attribute="org_unit", column_name=columns["org_unit"], widget=widgets.ForeignKeyWidget(OrgUnit, "code"))
        phone = fields.Field(attribute="phone", column_name=columns["phone"])
        address = fields.Field(attribute="address", column_name=columns["address"])

        class Meta:
            model = Customer
            import_id_fields = ("external_id",)
            fields = ("external_id", "name", "credit_code", "kind", "industry", "status", "org_unit", "phone", "address")
            use_bulk = True
            batch_size = 2000
            skip_diff = True
            instance_loader_class = CachedInstanceLoader

        def before_import_row(self, row, **kwargs):
            # The same value translations as our mapping (the library has no such option).
            row[columns["kind"]] = SPEC["columns"][columns["kind"]]["values"][row[columns["kind"]]]
            row[columns["status"]] = SPEC["columns"][columns["status"]]["values"][row[columns["status"]]]

    with open(path, encoding="utf-8") as handle:
        dataset = tablib.Dataset().load(handle.read(), format="csv")
    with schema_context(schema):
        actor = get_user_model().objects.get(username=IMPORTER)
        started = time.perf_counter()
        with history.acting(actor, via="import"):
            result = CustomerResource().import_data(dataset, dry_run=False, use_transactions=True, raise_errors=True)
        seconds = time.perf_counter() - started
        count = Customer.objects.count()
    if result.has_errors() or count != len(dataset):
        raise RuntimeError(f"django-import-export: {count} customers for {len(dataset)} rows")
    log(f"  django-import-export: {len(dataset)} rows in {seconds:.2f}s ({len(dataset) / seconds:,.0f} rows/s)")
    return len(dataset) / seconds


# --- The run ------------------------------------------------------------------------------------

def bench_tenant(slug):
    """A scratch tenant with the 2,000-unit tree and the importer (provincial manager at HQ)."""
    from django.contrib.auth import get_user_model
    from django_tenants.utils import schema_context

    from permissions.models import Membership, Role

    tenant = scratch_tenant(slug)
    with schema_context(tenant.schema_name):
        units = load_tree(tree_rows(2000))
        user = get_user_model().objects.create_user(username=IMPORTER, password="x")
        Membership.objects.create(user=user, unit=units["HQ"], role=Role.objects.get(code="provincial_manager"))
    return tenant, units


def run(args):
    setup_django()
    tenant, units = bench_tenant("bench-imports")
    codes = sorted(units)
    with tempfile.TemporaryDirectory(prefix="kam-bench-imports-") as folder:
        path = Path(folder) / "customers.csv"
        started = time.perf_counter()
        write_csv(path, args.rows, codes)
        log(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f}s")

        log(f"our import, {args.rows:,} rows:")
        dry = run_child(tenant.schema_name, path, commit=False)
        commit = run_child(tenant.schema_name, path, commit=True)
        again = run_child(tenant.schema_name, path, commit=True)
        if commit["created"] != args.rows or again["created"] or again["updated"]:
            raise RuntimeError("the re-import changed something")

        small = Path(folder) / "first.csv"
        with open(path, encoding="utf-8") as source, open(small, "w", encoding="utf-8") as target:
            for number, line in enumerate(source):
                if number > args.library_rows:
                    break
                target.write(line)
        log(f"the first {args.library_rows:,} rows:")
        ours_tenant, _units = bench_tenant("bench-imports-ours")
        ours_small = run_child(ours_tenant.schema_name, small, commit=True)
        library_tenant, _units = bench_tenant("bench-imports-lib")
        library_rate = library_import(library_tenant.schema_name, small)

    emit("import_rows_per_s", commit["rows"] / commit["seconds"], "rows/s", digits=0)
    emit("import_peak_rss_mb", max(dry["peak_rss_mb"], commit["peak_rss_mb"], again["peak_rss_mb"]), "MB", digits=1)
    emit("import_export_lib_rows_per_s", library_rate, "rows/s", digits=0)
    emit("import_dry_run_rows_per_s", dry["rows"] / dry["seconds"], "rows/s", digits=0)
    emit("import_reimport_rows_per_s", again["rows"] / again["seconds"], "rows/s", digits=0)
    emit("import_rows_per_s_library_size", ours_small["rows"] / ours_small["seconds"], "rows/s", digits=0)
    emit("import_rows", commit["rows"], "rows")
    # What the rows cost, whatever else the machine was doing (the rates above depend on it).
    emit("import_python_cpu_us_per_row", commit["python_cpu_s"] * 1e6 / commit["rows"], "µs", digits=1)
    if commit["postgres_cpu_s"] is not None:
        emit("import_postgres_cpu_us_per_row", commit["postgres_cpu_s"] * 1e6 / commit["rows"], "µs", digits=1)
    emit("import_load_avg", commit["load_avg"], "load", digits=1)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    with scratch_database("imports"):
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
