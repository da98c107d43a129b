"""What every customer page shares: a login, the "customers" module switched on for the user
(else 404, as if the page did not exist), and a 403 page when a service or selector refuses."""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View

from permissions.decorators import module_required


@method_decorator(module_required("customers"), name="dispatch")
class _ModulePage(View):
    pass


class CustomerPage(LoginRequiredMixin, _ModulePage):
    """Base of the customer pages: login first (anonymous users go to the login page), then
    the module switch, then the view; a refusal (PermissionDenied) answers the 403 page."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except PermissionDenied as exc:
            return render(request, "key_accounts/forbidden.html", {"reason": str(exc)}, status=403)


def is_htmx(request, target):
    """An htmx request that swaps only the element ``target``."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target
