"""404/500 pages: JSON in the API's error format under /api/, HTML elsewhere."""
from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template.loader import render_to_string

from kam.api.errors import api_not_found, api_server_error


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return api_not_found(request)
    return render(request, "web/404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return api_server_error(request)
    # No request context: the context processors would touch the session and the user,
    # and the database may be the very thing that failed.
    context = {"request_id": getattr(request, "request_id", None)}
    return HttpResponseServerError(render_to_string("web/500.html", context))
