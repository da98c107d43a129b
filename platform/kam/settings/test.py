"""Tests: base settings against the real PostgreSQL and Redis given by the environment."""
import os

from .base import *  # noqa: F401,F403
from .base import CACHES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# Keep test keys apart from a demo that may share the same Redis.
CACHES["default"]["KEY_PREFIX"] = "kam-test"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# A queue of this test run's own, so a demo worker on the same Redis never takes test tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("KAM_CELERY_QUEUE") or f"kam-test-{os.getpid()}"
