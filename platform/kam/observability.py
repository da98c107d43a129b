"""Request ids and log context: every log line carries the tenant and the request id."""
import contextvars
import logging
import re
import uuid

from django.core.signals import request_finished

request_id_var = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch: "$" would let a final newline through


class RequestIdMiddleware:
    """Takes X-Request-ID from the proxy when it is well formed, else makes one; echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Not reset on the way out: Django logs a 4xx/5xx ("Not Found: /x") after the whole
        # middleware chain has returned. request_finished clears it instead.
        request_id_var.set(request.request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def _forget_request_id(**kwargs):
    request_id_var.set("-")


request_finished.connect(_forget_request_id, dispatch_uid="kam.observability.forget_request_id")


def current_schema():
    from django.db import connection

    return getattr(connection, "schema_name", "-")


class ContextFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        try:
            record.tenant = current_schema()
        except Exception:  # settings not ready, e.g. while the logger itself starts up
            record.tenant = "-"
        return True
