"""Page-side counterpart of ScopedPermission's ``module``: a page of a module switched off for
the user answers 404, as if it did not exist."""
from functools import wraps

from django.http import Http404

from .selectors import module_enabled


def module_required(module):
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not module_enabled(request.user, module):
                raise Http404
            return view(request, *args, **kwargs)

        wrapped.module = module
        return wrapped

    return decorator
