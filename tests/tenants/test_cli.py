"""`kam tenant create|list|suspend|reactivate|delete` (the `tenant` management command)."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context, schema_exists

from tenants import services
from tenants.management.commands import tenant as tenant_command
from tenants.models import Domain, Tenant, TenantEvent

pytestmark = pytest.mark.django_db


def tenant(*args, **options):
    out = io.StringIO()
    call_command("tenant", *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def _counts():
    return Tenant.objects.count(), Domain.objects.count(), TenantEvent.objects.count()


def test_the_whole_lifecycle(alpha):
    out = tenant("create", "--slug", "cli-one", "--name", "命令行 CLI One", "--admin-email", "boss@cli-one.example")
    password = out.split("password:")[1].split()[0]
    assert "cli-one" in out and "http://cli-one.localhost/" in out
    assert schema_exists("t_cli_one")
    with schema_context("t_cli_one"):
        assert get_user_model().objects.get(username="boss@cli-one.example").check_password(password)
    assert TenantEvent.objects.get(tenant_slug="cli-one").actor_label.startswith("cli:")

    rows = [line.split("\t") for line in tenant("list").splitlines()]
    row = next(r for r in rows if r[0] == "cli-one")
    assert row == ["cli-one", "active", "t_cli_one", "cli-one.localhost", "命令行 CLI One"]
    assert {"alpha", "beta"} <= {r[0] for r in rows} and "public" not in {r[0] for r in rows}

    tenant("suspend", "cli-one")
    assert Tenant.objects.get(slug="cli-one").status == "suspended"
    assert "cli-one\tsuspended" in tenant("list")
    tenant("reactivate", "cli-one")
    assert Tenant.objects.get(slug="cli-one").status == "active"

    tenant("delete", "cli-one", "--confirm", "cli-one")
    assert not schema_exists("t_cli_one") and not Tenant.objects.filter(slug="cli-one").exists()
    actions = list(TenantEvent.objects.filter(tenant_slug="cli-one").values_list("action", flat=True))
    assert actions == ["deleted", "reactivated", "suspended", "created"]


def test_a_given_admin_password_is_not_echoed(alpha):
    out = tenant("create", "--slug", "cli-two", "--name", "Two", "--admin-email", "a@two.example", "--admin-password", "s3cret-given-pw")
    assert "s3cret-given-pw" not in out and "password:" not in out


@pytest.mark.parametrize("args, field", [
    (["create", "--slug", "ab", "--name", "Short"], "slug"),
    (["create", "--slug", "Bad Slug", "--name", "Spaces"], "slug"),
    (["create", "--slug", "alpha", "--name", "Taken"], "slug"),
    (["create", "--slug", "public", "--name", "Reserved"], "slug"),
    (["create", "--slug", "cli-three", "--name", "  "], "name"),
    (["create", "--slug", "cli-four", "--name", "Mail", "--admin-email", "nope"], "admin_email"),
    (["create", "--slug", "cli-five", "--name", "Host", "--domain", "beta.localhost"], "domain"),
    (["suspend", "no-such-tenant"], "slug"),
    (["reactivate", "no-such-tenant"], "slug"),
    (["delete", "no-such-tenant", "--confirm", "no-such-tenant"], "slug"),
    (["delete", "alpha", "--confirm", "beta"], "confirm"),
    (["delete", "alpha", "--confirm", ""], "confirm"),
])
def test_errors_are_command_errors_naming_the_field_and_change_nothing(alpha, beta, args, field):
    before = _counts()
    with pytest.raises(CommandError) as exc:
        tenant(*args)
    assert str(exc.value).startswith(f"{field}: ")
    assert _counts() == before
    assert schema_exists("t_alpha") and Tenant.objects.get(slug="alpha").status == "active"


@pytest.mark.parametrize("options", [{"interactive": False}, {}])
def test_delete_without_confirm_refuses_when_nobody_can_answer(alpha, options):
    """--no-input, or no terminal on stdin (as under pytest, cron or CI): refuse, touch nothing."""
    before = _counts()
    with pytest.raises(CommandError, match="--confirm"):
        tenant("delete", "alpha", **options)
    assert _counts() == before and schema_exists("t_alpha")


def test_delete_asks_on_a_terminal(alpha, monkeypatch):
    services.tenant_create(actor="pytest", slug="cli-ask", name="Ask")
    monkeypatch.setattr(tenant_command.Command, "stdin_is_tty", staticmethod(lambda: True))
    monkeypatch.setattr("builtins.input", lambda prompt: "wrong")
    with pytest.raises(CommandError, match="^confirm: "):
        tenant("delete", "cli-ask")
    assert schema_exists("t_cli_ask")
    monkeypatch.setattr("builtins.input", lambda prompt: "cli-ask")
    tenant("delete", "cli-ask")
    assert not schema_exists("t_cli_ask")


def test_bad_usage_is_a_command_error(alpha):
    with pytest.raises(CommandError):
        tenant("create", "--slug", "no-name")
    with pytest.raises(CommandError):
        tenant("explode")
