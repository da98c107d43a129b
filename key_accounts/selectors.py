"""Reads of the key-account archive. Every list starts from permissions.selectors.visible, so
nothing outside the user's scope (subtrees, groups they may view, direct grants) ever leaves.

The customer list, the export and every search share one filter set (key_accounts.filters),
so what a user exports is exactly the list they were looking at.
"""
from django.core.exceptions import ValidationError

from permissions.selectors import get_visible_or_404, visible

from .models import Customer


def customers(*, user, action="view"):
    """Every customer ``user`` may ``action``, unordered and unfiltered."""
    return visible(user, Customer.objects.all(), action=action)


def customer_list(*, user, params=None, action="view"):
    """The customers ``user`` may ``action``, filtered, searched and ordered by ``params`` (a
    QueryDict or dict as in key_accounts.filters.CustomerFilter). Invalid filter values raise
    ValidationError naming the parameter."""
    from .filters import CustomerFilter

    queryset = customers(user=user, action=action).select_related("org_unit", "account_manager")
    filterset = CustomerFilter(params or {}, queryset=queryset, user=user)
    if not filterset.is_valid():
        raise ValidationError({name: [str(message) for message in messages] for name, messages in filterset.errors.items()})
    return filterset.qs


def customer_get(*, user, pk, action="view"):
    """One customer by id: Http404 when missing or not visible, PermissionDenied when visible
    but ``action`` is not allowed."""
    queryset = Customer.objects.select_related("org_unit", "account_manager", "group")
    return get_visible_or_404(user, queryset, pk, action=action)


def customer_history(customer):
    """The customer's changes, newest first, each ``{"at", "label", "actor", "unit", "via",
    "changes": {field: [before, after]}}``; the caller has checked access to ``customer``."""
    from .history import changes_of

    return changes_of(customer)

