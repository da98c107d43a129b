"""Deleting users follows only the relations of the current schema (tenants/deletion.py): the
tenant tables that point at users (memberships, audit) are absent from the public schema, and
public tables that point at platform users must not be touched from a tenant."""
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from permissions.models import Membership, PermissionAuditEntry
from tenants.models import TenantEvent

from .conftest import member

User = get_user_model()


def test_a_platform_user_can_be_deleted(tenants, db):
    staff = User.objects.create_user("staff@platform.example", password="x")
    event = TenantEvent.objects.create(tenant_slug="alpha", action="created", actor=staff, actor_label=staff.username)
    staff.delete()  # used to fail: relation "permissions_membership" does not exist
    event.refresh_from_db()
    assert not User.objects.filter(username="staff@platform.example").exists() and event.actor is None


def test_deleting_a_tenant_user_leaves_platform_rows_alone(tree, alpha):
    with schema_context("public"):
        staff = User.objects.create_user("staff2@platform.example", password="x")
        event = TenantEvent.objects.create(tenant_slug="alpha", action="created", actor=staff, actor_label=staff.username)
    twin = User.objects.create_user("twin@alpha.example", password="x", id=staff.pk)  # same id, other schema
    member(twin, tree.c11, "account_manager")
    PermissionAuditEntry.objects.create(actor=twin, actor_label=twin.username, action="test")
    twin.delete()
    assert not Membership.objects.filter(user_id=staff.pk).exists()
    assert PermissionAuditEntry.objects.get(action="test").actor is None
    with schema_context("public"):
        event.refresh_from_db()
        assert event.actor_id == staff.pk
