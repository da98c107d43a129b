"""`kam demo`: the first README command's product run.

Migrates, provisions the demo tenant (once, with an org tree and a generated archive of
customers from bench.generate; later runs reuse the data), starts gunicorn,
a Celery worker and beat, prints where to log in, and stops them all on Ctrl-C.
"""
import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time

from .paths import BASE_DIR, VAR_DIR

DEMO_SLUG = "demo"
DEMO_NAME = "演示电信集团 Demo Telecom"
DEMO_ADMIN = "admin@demo.kam.local"
PLATFORM_ADMIN = "platform@kam.local"
CREDENTIALS = VAR_DIR / "demo-credentials.json"
DEMO_CUSTOMERS = 3_000  # generated once by bench.generate; a couple of seconds


def celery_argv(kind):
    base = [sys.executable, "-m", "celery", "-A", "kam"]
    if kind == "worker":
        return base + ["worker", "--loglevel", "INFO"]
    return base + ["beat", "--loglevel", "INFO", "--schedule", str(VAR_DIR / "celerybeat-schedule")]


def _load_credentials():
    if CREDENTIALS.exists():
        return json.loads(CREDENTIALS.read_text())
    return {}


def _save_credentials(data):
    CREDENTIALS.write_text(json.dumps(data, indent=2))
    CREDENTIALS.chmod(0o600)


def demo_tree_files():
    """Where the demo's org tree may be: shipped in the repository, or the team's shared folder."""
    from org_hierarchy.importing import SHIPPED_TREE

    return [SHIPPED_TREE, BASE_DIR.parent / "shared" / "data" / SHIPPED_TREE.name]


def load_demo_tree(tenant, files=None):
    """Give the demo tenant its levels (HQ, province, city) and the HQ -> 31 provinces ->
    342 cities tree, once: a tenant that has units already is left as it is (its admin may
    have reorganised it since)."""
    from django_tenants.utils import schema_context

    from org_hierarchy.importing import import_org_tree
    from org_hierarchy.models import OrgUnit

    files = demo_tree_files() if files is None else files
    source = next((path for path in files if path.is_file()), None)
    with schema_context(tenant.schema_name):
        if OrgUnit.objects.exists():
            return None
        if source is None:
            print(f"kam demo: no org tree file at {' or '.join(map(str, files))}; the demo tenant starts without one.",
                  file=sys.stderr)
            return None
        report = import_org_tree(actor="kam demo", file=source, create_levels=True)
    if report.ok:
        print(f"kam demo: org tree loaded from {source} ({len(report.created)} units).", flush=True)
    else:
        print("kam demo: the org tree was not loaded:\n  " + "\n  ".join(report.lines()), file=sys.stderr)
    return report


def load_demo_data(tenant, creds, customers=DEMO_CUSTOMERS):
    """Give the demo tenant its generated archive (bench.generate), once: ``creds`` (the demo's
    var/ file) remembers it, and a tenant without a tree or with customers already is left alone.
    Returns the generator's report, or None when nothing was generated."""
    from django_tenants.utils import schema_context

    from key_accounts.models import Customer
    from org_hierarchy.models import OrgUnit

    if creds.get("demo_data"):
        return None
    with schema_context(tenant.schema_name):
        if Customer.objects.exists() or not OrgUnit.objects.exists():
            return None
    from bench.generate import generate

    report = generate(tenant=tenant, customers=customers, seed=1)
    creds["demo_data"] = {"customers": report.rows["customer"], "seed": report.seed}
    print(f"kam demo: {report.rows['customer']:,} customers generated ({report.seconds:.1f}s).", flush=True)
    return report


def prepare():
    """Migrate and make sure the demo tenant and both admins exist; returns their passwords."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from tenants.models import Tenant
    from tenants.services import tenant_create

    call_command("migrate_all", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    creds = _load_credentials()
    User = get_user_model()

    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        creds["tenant_admin"] = secrets.token_urlsafe(10)
        tenant, _ = tenant_create(
            actor="kam demo", slug=DEMO_SLUG, name=DEMO_NAME, admin_email=DEMO_ADMIN, admin_password=creds["tenant_admin"]
        )
        creds.pop("demo_data", None)  # a new demo tenant gets its data again
    with schema_context(tenant.schema_name):
        admin = User.objects.filter(username=DEMO_ADMIN).first()
        if admin is None or "tenant_admin" not in creds or not admin.check_password(creds["tenant_admin"]):
            creds["tenant_admin"] = secrets.token_urlsafe(10)
            admin = admin or User(username=DEMO_ADMIN, email=DEMO_ADMIN, is_staff=True, is_superuser=True)
            admin.set_password(creds["tenant_admin"])
            admin.save()
    load_demo_tree(tenant)
    load_demo_data(tenant, creds)

    staff = User.objects.filter(username=PLATFORM_ADMIN).first()  # public schema: platform staff
    if staff is None or "platform_admin" not in creds or not staff.check_password(creds["platform_admin"]):
        creds["platform_admin"] = secrets.token_urlsafe(10)
        staff = staff or User(username=PLATFORM_ADMIN, email=PLATFORM_ADMIN, is_staff=True, is_superuser=True)
        staff.set_password(creds["platform_admin"])
        staff.save()
    _save_credentials(creds)
    return tenant, creds


def _banner(host, port, tenant, creds):
    domain = tenant.get_primary_domain().domain
    base = os.environ.get("KAM_BASE_DOMAIN", "localhost")
    lines = [
        "",
        "KAM is running.",
        f"  Demo tenant ({tenant.name}):  http://{domain}:{port}/",
        f"    log in as  {DEMO_ADMIN}",
        f"    password   {creds['tenant_admin']}",
        f"  Platform administration:  http://{base}:{port}/admin/",
        f"    log in as  {PLATFORM_ADMIN}",
        f"    password   {creds['platform_admin']}",
        f"  API docs: http://{domain}:{port}/api/docs/   health: http://{domain}:{port}/readyz",
        f"  Data: {VAR_DIR} (kept between runs)   Stop: Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)


def run(argv):
    parser = argparse.ArgumentParser(prog="kam demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--no-celery", action="store_true", help="do not start a Celery worker and beat")
    args = parser.parse_args(argv)

    tenant, creds = prepare()
    commands = [
        [sys.executable, "-m", "gunicorn", "kam.wsgi:application", "--bind", f"{args.host}:{args.port}",
         "--workers", str(args.workers), "--access-logfile", "-"],
    ]
    if not args.no_celery:
        commands += [celery_argv("worker") + ["--concurrency", "2"], celery_argv("beat")]
    children = [subprocess.Popen(cmd) for cmd in commands]

    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    time.sleep(1.5)
    _banner(args.host, args.port, tenant, creds)
    exit_code = 0
    try:
        while not stopping:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                print(f"kam demo: a process exited ({' '.join(dead[0].args[:4])}); stopping.", file=sys.stderr)
                exit_code = 1
                break
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        print("kam demo: stopped.", flush=True)
    return exit_code
