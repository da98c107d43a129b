"""Probes (/healthz, /readyz), request ids, and JSON log lines carrying tenant and request id."""
import io
import json
import logging
import re
import socket
from logging.config import DictConfigurator

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from kam.observability import ContextFilter
from tenants import services
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

ANY_HOSTS = ["alpha.localhost", "localhost", "nobody.localhost", "10.1.2.3", "10.1.2.3:8000", "[::1]:8000", "evil.example.com"]


@pytest.mark.parametrize("host", ANY_HOSTS)
def test_healthz_answers_on_any_host(alpha, host):
    response = Client(HTTP_HOST=host).get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("host", ["alpha.localhost", "10.1.2.3", "nobody.localhost"])
def test_readyz_reports_every_check_ok(alpha, host):
    response = Client(HTTP_HOST=host).get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "migrations": "ok"}}


def test_probes_answer_for_a_suspended_tenant(alpha):
    services.tenant_suspend(actor="pytest", tenant=Tenant.objects.get(slug="alpha"))
    assert alpha.client().get("/").status_code == 403
    assert alpha.client().get("/healthz").status_code == 200
    assert alpha.client().get("/readyz").status_code == 200


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_readyz_is_503_naming_redis_when_redis_is_down(alpha):
    caches = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0"}}
    with override_settings(CACHES=caches):  # Django's test signals give a fresh cache handler
        response = Client(HTTP_HOST="localhost").get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("error: ") and "ConnectionError" in body["checks"]["redis"]
    assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    assert Client(HTTP_HOST="localhost").get("/readyz").status_code == 200  # and back once it is


def test_readyz_is_503_naming_migrations_for_an_unmigrated_template(alpha):
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "kam_unmigrated"')  # rolled back with the test
    with override_settings(TENANT_BASE_SCHEMA="kam_unmigrated"):
        response = Client(HTTP_HOST="localhost").get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "unapplied migrations in kam_unmigrated" in checks["migrations"]
    assert checks["database"] == "ok" and checks["redis"] == "ok"


def test_readyz_is_503_when_the_template_is_missing(alpha):
    with override_settings(TENANT_BASE_SCHEMA="kam_no_such_template"):
        response = Client(HTTP_HOST="localhost").get("/readyz")
    assert response.status_code == 503 and "kam_no_such_template missing" in response.json()["checks"]["migrations"]


# --- Request ids ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/login/", "/api/v1/me/", "/healthz"])
def test_a_well_formed_request_id_is_echoed(alpha, path):
    response = alpha.client().get(path, HTTP_X_REQUEST_ID="edge-7f3a.B_9")
    assert response["X-Request-ID"] == "edge-7f3a.B_9"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 65, "<script>alert(1)</script>", "ünïcode", "a;b", "a\r\nSet-Cookie: x=1", "trailing-newline\n"])
def test_a_malformed_request_id_is_replaced(alpha, incoming):
    first = alpha.client().get("/login/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    second = alpha.client().get("/login/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


def test_unknown_hosts_and_suspended_tenants_still_get_a_request_id(alpha):
    assert Client(HTTP_HOST="nobody.localhost").get("/", HTTP_X_REQUEST_ID="probe-1")["X-Request-ID"] == "probe-1"
    services.tenant_suspend(actor="pytest", tenant=Tenant.objects.get(slug="alpha"))
    assert alpha.client().get("/", HTTP_X_REQUEST_ID="probe-2")["X-Request-ID"] == "probe-2"


# --- JSON logs ------------------------------------------------------------------------------

@pytest.fixture
def json_log():
    """The real console handler (with its context filter) writing with the real JSON
    formatter from settings.LOGGING into a buffer; yields a function returning parsed lines."""
    handler = next(
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, ContextFilter) for f in h.filters)
    )
    configurator = DictConfigurator(settings.LOGGING)
    formatter = configurator.configure_formatter(configurator.config["formatters"]["json"])
    buffer = io.StringIO()
    old_stream, old_formatter = handler.setStream(buffer), handler.formatter
    handler.setFormatter(formatter)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        handler.setStream(old_stream)
        handler.setFormatter(old_formatter)


def test_log_lines_are_json_with_tenant_and_request_id(alpha, json_log):
    alpha.client().get("/no-such-page/", HTTP_X_REQUEST_ID="trace-alpha-1")
    Client(HTTP_HOST="localhost").get("/no-such-platform-page/", HTTP_X_REQUEST_ID="trace-public-1")
    lines = json_log()
    alpha_line = next(line for line in lines if "/no-such-page/" in line["message"])
    assert alpha_line["tenant"] == alpha.schema_name and alpha_line["request_id"] == "trace-alpha-1"
    assert alpha_line["level"] == "WARNING" and alpha_line["logger"] == "django.request" and alpha_line["time"]
    public_line = next(line for line in lines if "/no-such-platform-page/" in line["message"])
    assert public_line["tenant"] == "public" and public_line["request_id"] == "trace-public-1"


def test_a_replaced_request_id_is_the_one_logged(alpha, json_log):
    response = alpha.client().get("/no-such-page/", HTTP_X_REQUEST_ID="bad id")
    line = next(line for line in json_log() if "/no-such-page/" in line["message"])
    assert line["request_id"] == response["X-Request-ID"] != "bad id"


def test_outside_a_request_the_context_is_a_dash(json_log):
    logging.getLogger("kam.test").warning("no request here")
    line = next(line for line in json_log() if line["message"] == "no request here")
    assert line["request_id"] == "-" and line["tenant"] in ("public", "-")
