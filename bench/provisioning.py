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
import statistics
import sys
import time
from unittest import mock

from bench._common import emit, log, scratch_database, setup_django

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
    setup_django()

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

    log(summary("clone", clone))
    log(summary("replay", replay))
    clone_s, replay_s = statistics.mean(clone), statistics.mean(replay)
    for metric, value, unit in (
        ("provision_clone_s_per_tenant", clone_s, "s"),
        ("provision_replay_s_per_tenant", replay_s, "s"),
        ("provision_speedup", replay_s / clone_s, "x"),
    ):
        emit(metric, value, unit, digits=4)


def main(argv=None):
    args = parse_args(argv)
    with scratch_database("bench"):
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
