"""One error format for the whole API:

    {"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}}}

``fields`` appears on validation errors and names each offending field (nested for rows).
"""
from django.core.exceptions import PermissionDenied, ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


def error_body(code, message, fields=None):
    body = {"code": code, "message": str(message)}
    if fields:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc, context):
    # Services raise Django's ValidationError; present it like DRF's, field by field.
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", _("The input is not valid."), detail)
    else:
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code if isinstance(code, str) else "error", getattr(exc, "detail", exc))
    return response


def _json_error(status_code, code, message):
    return JsonResponse(error_body(code, message), status=status_code)


def api_not_found(request, exception=None):
    return _json_error(status.HTTP_404_NOT_FOUND, "not_found", _("Not found."))


def api_server_error(request):
    return _json_error(status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error", _("Server error."))


def not_found_response():
    return Response(error_body("not_found", _("Not found.")), status=status.HTTP_404_NOT_FOUND)
