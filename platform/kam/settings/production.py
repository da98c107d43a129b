"""Production: everything from base, plus the checks and hardening a public deployment needs."""
from django.core.exceptions import ImproperlyConfigured

from . import env
from .base import *  # noqa: F401,F403

if not env.SECRET_KEY:
    raise ImproperlyConfigured("KAM_SECRET_KEY must be set in production.")
DEBUG = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
