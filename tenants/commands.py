"""Helpers for management commands that act inside one tenant (``--tenant SLUG``)."""
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from .services import tenant_get


def tenant_schema(slug):
    """The schema of the tenant ``slug``, or a CommandError naming the unknown slug."""
    try:
        return tenant_get(slug).schema_name
    except ValidationError as exc:
        raise CommandError(" ".join(exc.messages)) from None
