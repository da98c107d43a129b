"""The one place that reads the process environment.

Every setting that varies between machines comes from here; the settings modules
only import these names.
"""
import os
from pathlib import Path

import dj_database_url

from kam.paths import BASE_DIR, VAR_DIR


def _bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(name, default):
    value = os.environ.get(name)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = _bool("KAM_DEBUG")
SECRET_KEY = os.environ.get("KAM_SECRET_KEY", "")
# Tenants are served at <slug>.<BASE_DOMAIN>; platform staff use BASE_DOMAIN itself.
BASE_DOMAIN = os.environ.get("KAM_BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = _list("KAM_ALLOWED_HOSTS", [BASE_DOMAIN, f".{BASE_DOMAIN}"])
CSRF_TRUSTED_ORIGINS = _list("KAM_CSRF_TRUSTED_ORIGINS", [])

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
DATABASE = dj_database_url.parse(DATABASE_URL, conn_max_age=60) if DATABASE_URL else None

LOG_LEVEL = os.environ.get("KAM_LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("KAM_LOG_FORMAT", "json")  # json | text
MIGRATION_PARALLEL = int(os.environ.get("KAM_MIGRATION_PARALLEL", "4"))
STATIC_ROOT = Path(os.environ.get("KAM_STATIC_ROOT", VAR_DIR / "static"))
# Uploaded imports and finished exports (per tenant folder; never served directly). Shared by
# web and worker: a volume in production.
MEDIA_ROOT = Path(os.environ.get("KAM_MEDIA_ROOT", VAR_DIR / "media"))
NODE_MODULES = Path(os.environ.get("KAM_NODE_MODULES", BASE_DIR / "node_modules"))
CELERY_QUEUE = os.environ.get("KAM_CELERY_QUEUE", "kam")
# Customer imports: files up to this size (bytes) are checked and imported in the request;
# larger ones by a Celery worker, with progress.
IMPORT_INLINE_BYTES = int(os.environ.get("KAM_IMPORT_INLINE_BYTES", str(2 * 1024 * 1024)))
# Roll-ups (reporting/): months kept in the summary tables, and the sort/hash memory of a recompute.
ROLLUP_MONTHS = int(os.environ.get("KAM_ROLLUP_MONTHS", "24"))
ROLLUP_WORK_MEM = os.environ.get("KAM_ROLLUP_WORK_MEM", "256MB")
# Customer exports: up to this many rows stream straight to the browser, more run in the
# background; finished export files are deleted after this many days.
EXPORT_SYNC_LIMIT = int(os.environ.get("KAM_EXPORT_SYNC_LIMIT", "10000"))
EXPORT_RETENTION_DAYS = int(os.environ.get("KAM_EXPORT_RETENTION_DAYS", "7"))

# gunicorn (deploy/gunicorn.conf.py). Each thread keeps its own database connection, so a
# web container holds up to WEB_WORKERS × WEB_THREADS of them: size PgBouncer for that.
WEB_WORKERS = int(os.environ.get("KAM_WEB_WORKERS", "2"))
WEB_THREADS = int(os.environ.get("KAM_WEB_THREADS", "4"))
WEB_TIMEOUT = int(os.environ.get("KAM_WEB_TIMEOUT", "60"))
