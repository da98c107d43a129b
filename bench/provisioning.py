"""Tenant provisioning: clone of the template schema vs. replaying every migration.

    .venv/bin/python -m bench.provisioning [--scale small|full] [--tenants N]

Runs on a scratch database of its own (``<DATABASE_URL's name>_bench``, or the embedded
server's when DATABASE_URL is unset), migrated with ``migrate_all`` and dropped at the end.
Both ways go through ``tenants.services.tenant_create`` (row, schema, domain, audit, one
transaction); the replay run swaps only its schema step for CREATE SCHEMA + migrate_schemas.
Prints one JSON object per line on stdout; details go to stderr.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import urllib.parse
from unittest import mock

TENANTS = {"small": 10, "full": 50}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.provisioning", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(TENANTS), default="small")
    parser.add_argument("--tenants", type=int, help="tenants per way (default 10 small, 50 full)")
    args = parser.parse_args(argv)
    args.tenants = args.tenants or TENANTS[args.scale]
    if args.tenants < 1:
        parser.error("--tenants must be at least 1")
    return args


def scratch_url(url):
    """The same server, a database of the bench's own."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") or "kam"
    return parts._replace(path=f"/{name}_bench").geturl(), f"{name}_bench"


def _admin_connection(url):
    import psycopg

    parts = urllib.parse.urlsplit(url)
    return psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True)


def create_database(url, name):
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url, name):
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def replay_schema(schema_name):
    """The framework's own way: an empty schema, then every tenant migration."""
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema_name}"')
    call_command("migrate_schemas", schema_name=schema_name, interactive=False, verbosity=0)


def provision_one(slug, *, replay=False):
    """Seconds to create one tenant (commit included)."""
    from tenants import services

    patch = mock.patch.object(services, "clone_template", replay_schema) if replay else contextlib.nullcontext()
    with patch:
        started = time.perf_counter()
        services.tenant_create(actor="bench", slug=slug, name=f"Bench {slug}")
        return time.perf_counter() - started


def delete_tenants(prefix):
    from tenants import services
    from tenants.models import Tenant

    for tenant in Tenant.objects.filter(slug__startswith=f"{prefix}-"):
        services.tenant_delete(actor="bench", tenant=tenant, confirm=tenant.slug)


def summary(label, timings):
    return (f"{label}: n={len(timings)} mean={statistics.mean(timings):.4f}s "
            f"median={statistics.median(timings):.4f}s min={min(timings):.4f}s max={max(timings):.4f}s\n"
            f"  each: {' '.join(f'{t:.3f}' for t in timings)}")


def run(args):
    import django
    from django.core.management import call_command

    django.setup()
    started = time.perf_counter()
    call_command("migrate_all", verbosity=0, stdout=sys.stderr)  # stdout is for the JSON lines
    print(f"migrate_all on the scratch database: {time.perf_counter() - started:.2f}s", file=sys.stderr)

    # One untimed tenant each way: imports and the migration graph load once per process.
    provision_one("warm-clone")
    provision_one("warm-replay", replay=True)
    # Alternating, so a busy machine weighs on both ways alike.
    clone, replay = [], []
    for i in range(args.tenants):
        clone.append(provision_one(f"clone-{i}"))
        replay.append(provision_one(f"replay-{i}", replay=True))
    for prefix in ("warm", "clone", "replay"):
        delete_tenants(prefix)

    print(summary("clone", clone), file=sys.stderr)
    print(summary("replay", replay), file=sys.stderr)
    clone_s, replay_s = statistics.mean(clone), statistics.mean(replay)
    for metric, value, unit in (
        ("provision_clone_s_per_tenant", clone_s, "s"),
        ("provision_replay_s_per_tenant", replay_s, "s"),
        ("provision_speedup", replay_s / clone_s, "x"),
    ):
        print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.base")
    os.environ.setdefault("KAM_LOG_LEVEL", "WARNING")
    from kam.embedded import ensure_services

    services = ensure_services()  # noqa: F841  (embedded servers live as long as this object)
    base_url = os.environ["DATABASE_URL"]
    url, name = scratch_url(base_url)
    create_database(base_url, name)
    os.environ["DATABASE_URL"] = url  # read by kam.settings.env at django.setup()
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(base_url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
