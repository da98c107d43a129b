"""The OpenAPI schema, trimmed to the caller: endpoints of a module switched off for them
(a view's ``module`` attribute, see api_permissions.ScopedPermission) are left out, so a
switched-off module disappears from the schema as it does from the API."""
import contextvars

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView

from .selectors import module_enabled

_schema_request = contextvars.ContextVar("schema_request", default=None)


class ScopedSchemaView(SpectacularAPIView):
    @extend_schema(exclude=True)  # the schema does not describe itself
    def get(self, request, *args, **kwargs):
        # drf-spectacular's preprocessing hooks receive only the endpoints; hand them the request.
        token = _schema_request.set(request)
        try:
            return super().get(request, *args, **kwargs)
        finally:
            _schema_request.reset(token)


def _module_of(callback):
    return getattr(getattr(callback, "cls", None), "module", None)


def drop_switched_off_modules(endpoints, **kwargs):
    """drf-spectacular preprocessing hook (settings.SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"])."""
    request = _schema_request.get()
    if request is None:  # generated offline (`kam spectacular`): the full schema
        return endpoints
    enabled = {}
    kept = []
    for endpoint in endpoints:
        module = _module_of(endpoint[3])
        if module and module not in enabled:
            enabled[module] = module_enabled(request.user, module)
        if not module or enabled[module]:
            kept.append(endpoint)
    return kept
