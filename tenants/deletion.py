"""Deleting a row follows only the relations whose tables belong to the current schema.

Users live in every schema (auth is both a shared and a tenant app), but many models pointing at
them live on one side only: tenant tables (memberships, audit entries) do not exist in the public
schema, and public tables (TenantEvent) sit on every tenant's search path yet point at platform
users. Django's delete collector follows every reverse relation, so without this, deleting a
platform user fails on a missing table, and deleting a tenant user would null the actor of
platform events that merely share its id.
"""
import functools

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import deletion
from django_tenants.utils import get_public_schema_name

_candidates = deletion.get_candidate_relations_to_delete


@functools.cache
def _labels(side):
    names = set(settings.SHARED_APPS if side == "public" else settings.TENANT_APPS)
    return frozenset(config.label for config in apps.get_app_configs() if config.name in names)


def in_current_schema(model):
    side = "public" if connection.schema_name == get_public_schema_name() else "tenant"
    return model._meta.app_label in _labels(side)


def _schema_candidates(opts):
    return (rel for rel in _candidates(opts) if in_current_schema(rel.related_model))


def install():
    deletion.get_candidate_relations_to_delete = _schema_candidates
