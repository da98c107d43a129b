"""A module switched off at a level disappears from the API, the OpenAPI schema and the pages of
users scoped there, and stays for users elsewhere."""
import pytest
from django.test import override_settings

from permissions import services

from .conftest import make_user, member

PROBE = "/api/v1/campaign-probe/"


def _client(alpha, user):
    client = alpha.client()
    client.force_login(user)  # inside in_alpha: the session lands in alpha's schema
    return client


@pytest.fixture
def campaigns_off_for_cities(tree):
    services.module_set(actor="system", module="campaigns", level=tree.levels["city"], enabled=False)


@override_settings(ROOT_URLCONF="tests.permissions.urls_modules")
def test_switched_off_module_leaves_the_schema_and_the_api_of_city_users(alpha, tree, campaigns_off_for_cities):
    city_user, province_user = make_user("city"), make_user("province")
    member(city_user, tree.c11, "account_manager")
    member(province_user, tree.p1, "provincial_manager")
    city, province = _client(alpha, city_user), _client(alpha, province_user)

    city_schema = city.get("/api/schema/", {"format": "json"})
    province_schema = province.get("/api/schema/", {"format": "json"})
    assert city_schema.status_code == province_schema.status_code == 200
    assert PROBE not in city_schema.json()["paths"]
    assert PROBE in province_schema.json()["paths"]
    assert "/api/v1/org-units/" in city_schema.json()["paths"]  # core endpoints stay

    assert city.get(PROBE).status_code == 404
    assert province.get(PROBE).status_code == 200

    # ... and from the pages: the module's page answers 404, its menu entry is gone.
    assert city.get("/campaigns/").status_code == 404
    assert province.get("/campaigns/").status_code == 200
    assert b'href="/campaigns/"' not in city.get("/menu/").content
    assert b'href="/campaigns/"' in province.get("/menu/").content


@override_settings(ROOT_URLCONF="tests.permissions.urls_modules")
def test_switching_the_module_back_on_brings_it_back(alpha, tree, campaigns_off_for_cities):
    city_user = make_user("city")
    member(city_user, tree.c11, "account_manager")
    city = _client(alpha, city_user)
    assert PROBE not in city.get("/api/schema/", {"format": "json"}).json()["paths"]

    services.module_set(actor="system", module="campaigns", level=tree.levels["city"], enabled=True)
    assert PROBE in city.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert city.get(PROBE).status_code == 200
