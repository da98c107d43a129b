"""Users, memberships and logged-in clients for tests inside a tenant's schema."""
import itertools

from django.contrib.auth import get_user_model

from permissions.models import Membership, Role

_numbers = itertools.count(1)


def make_user(name, **extra):
    return get_user_model().objects.create_user(username=f"{name}-{next(_numbers)}@example.com", password="x", **extra)


def member(user, unit, role_code):
    return Membership.objects.create(user=user, unit=unit, role=Role.objects.get(code=role_code))


def client_for(info, user):
    """A test client on ``info``'s host, in English, with ``user`` logged in (session in the tenant's schema)."""
    client = info.client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client
