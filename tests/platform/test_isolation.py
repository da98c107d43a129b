"""Tenant isolation, generated from the URLconfs so that a new route cannot be forgotten.

Every route of ``kam.urls_tenant`` is requested on tenant B's host with tenant A's
credentials (session cookie and API token) and A's object ids: the answer must refuse
(401/403/404, or a redirect to B's login page) and show nothing private of A or B. The same
request on A's own host with A's credentials must work, so every check can fail.
``kam.urls_public`` gets the same treatment on the platform host, where no tenant credential
may work. ``test_every_route_is_covered`` fails when a route appears that these tests
cannot fill in or that an expectation below names but the URLconf no longer has.
"""
import itertools
import re
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize
from django_tenants.utils import schema_context
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.views import APIView

from org_hierarchy import services as org_services
from permissions import services as permission_services
from permissions.models import Role
from tenants.models import TenantEvent

PUBLIC_HOST = "localhost"
PASSWORD = "isolation-test-pass-7"
UNSAFE = ("post", "put", "patch", "delete")


# --- Walking the URLconfs ------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    key: str  # the pattern text along the include chain, as `manage.py show_urls`/admindocs print it
    patterns: tuple = field(compare=False)
    callback: object = field(compare=False)

    def __str__(self):
        return self.key

    @property
    def kwargs(self):
        return [name for pattern in self.patterns for name in pattern.regex.groupindex]


def walk(urlconf):
    def _walk(patterns, chain):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from _walk(entry.url_patterns, chain + (entry.pattern,))
            else:
                full = chain + (entry.pattern,)
                yield Route("".join(str(p) for p in full), full, entry.callback)

    return list(_walk(get_resolver(urlconf).url_patterns, ()))


TENANT_ROUTES = walk("kam.urls_tenant")
PUBLIC_ROUTES = walk("kam.urls_public")


def model_admin_of(callback):
    """The ModelAdmin behind an admin view: set by ModelAdmin.get_urls, or the bound
    method that AdminSite.admin_view wrapped (e.g. UserAdmin.user_change_password)."""
    found = getattr(callback, "model_admin", None)
    if found is None:
        found = getattr(getattr(callback, "__wrapped__", None), "__self__", None)
    return found if hasattr(found, "model") and hasattr(found, "admin_site") else None


def view_class_of(callback):
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None)


# Pages whose view names no model: the model their <pk> is an id of, by route prefix.
ROUTE_MODELS = {"customers/imports/": "key_accounts.ImportJob", "customers/exports/": "key_accounts.ExportJob"}
# URL arguments other than pk that name an object.
KWARG_MODELS = {"contact_id": "key_accounts.Contact"}


def model_of(route):
    for prefix, label in ROUTE_MODELS.items():
        if route.key.startswith(prefix):
            return apps.get_model(label)
    admin = model_admin_of(route.callback)
    if admin is not None:
        return admin.model
    view = view_class_of(route.callback)
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    return getattr(view, "model", None)


def lookup_kwarg(route):
    view = view_class_of(route.callback)
    return getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)


def is_drf(route):
    view = view_class_of(route.callback)
    return isinstance(view, type) and issubclass(view, APIView)


def methods_of(route):
    """The HTTP methods a route's view answers (beyond HEAD/OPTIONS)."""
    actions = getattr(route.callback, "actions", None)  # DRF viewset routes
    if actions:
        return sorted(actions)
    view = view_class_of(route.callback)
    if view is not None:
        return [m for m in ("get", *UNSAFE) if hasattr(view, m)]
    return ["get", "post"]  # function views (the admin's among them) take both


# How each kind of URL argument is filled in; anything else must be added here.
OBJECT_KWARGS = {"object_id", "pk", "id"}
FIXED_KWARGS = {"url": ["no-such-page/"]}  # the admin's catch-all


def kwarg_plan(route):
    """For each URL argument: ("object", (model, attribute)), ("content_type", model),
    ("choices", [...]) or ("fixed", [...]).
    Raises LookupError naming the route and argument when there is no plan."""
    plan = {}
    for name in route.kwargs:
        if name == "content_type_id":  # admin/r/<ct>/<id>/: a user of the tenant
            plan[name] = ("content_type", get_user_model())
        elif name == "app_label":
            choices = re.search(r"\(\?P<app_label>([\w|]+)\)", route.key)
            plan[name] = ("choices", choices.group(1).split("|"))
        elif name in FIXED_KWARGS:
            plan[name] = ("fixed", FIXED_KWARGS[name])
        elif name in KWARG_MODELS:
            plan[name] = ("object", (apps.get_model(KWARG_MODELS[name]), "pk"))
        elif name in OBJECT_KWARGS or name == lookup_kwarg(route):
            model = get_user_model() if "content_type_id" in route.kwargs else model_of(route)
            if model is None:
                raise LookupError(f"{route}: cannot tell which model <{name}> names")
            attr = "pk" if name in OBJECT_KWARGS else getattr(view_class_of(route.callback), "lookup_field", name)
            plan[name] = ("object", (model, attr))
        else:
            raise LookupError(f"{route}: no value for <{name}>; teach kwarg_plan() about it")
    return plan


def build_url(route, values):
    parts = []
    for pattern in route.patterns:
        template, params = normalize(pattern.regex.pattern)[0]
        converters = getattr(pattern, "converters", {})
        parts.append(
            template % {p: converters[p].to_url(values[p]) if p in converters else str(values[p]) for p in params}
        )
    return "/" + "".join(parts)


def urls_for(route, objects, urlconf):
    """Every URL of the route filled with ``objects`` (one tenant's ids); each must resolve
    back to this very route, not to a catch-all after it."""
    choices = {}
    for name, (kind, arg) in kwarg_plan(route).items():
        if kind == "object":
            choices[name] = [objects.value_of(*arg, route)]
        elif kind == "content_type":
            choices[name] = [objects.content_type_id(arg)]
        else:
            choices[name] = arg
    urls = []
    for combo in itertools.product(*choices.values()):
        url = build_url(route, dict(zip(choices, combo)))
        assert resolve(url, urlconf).func is route.callback, f"{url} does not resolve to {route}"
        urls.append(url)
    assert urls, f"{route}: no URL to try"
    return urls


# --- What each route may answer ------------------------------------------------------------

# Anyone may call these: nothing to refuse, but they must not leak either.
TENANT_OPEN = {"login/", "logout/", "i18n/setlang/", "api/schema/", "api/docs/", "admin/login/"}
PUBLIC_OPEN = {"", "login/", "i18n/setlang/", "api/schema/", "api/docs/", "admin/login/"}
# Routes that only answer POST.
POST_ONLY = {"logout/", "i18n/setlang/", "admin/logout/"}

# What a logged-in owner gets on their own host when it is not 200 or a redirect elsewhere
# than a login page ("302 <to>" names a redirect). Each differs from what a stranger gets,
# so the refusals on the other host still mean something.
TENANT_OWN_HOST = {
    # The tenant registry lives in the public schema, which is on a tenant's search path too:
    # a tenant's own superuser must never see it.
    **{r.key: {403} for r in TENANT_ROUTES if r.key.startswith("admin/tenants/")},
    "admin/tenants/tenant/<path:object_id>/": {302},  # the admin's redirect to …/change/, itself 403
    "admin/tenants/tenantevent/<path:object_id>/": {302},
    "admin/logout/": {"302 /login/"},  # logged out, off to the login page (a stranger goes to /admin/)
    "admin/autocomplete/": {403},  # no field to complete without parameters
    "admin/r/<path:content_type_id>/<path:object_id>/": {404},  # users have no get_absolute_url
    "admin/(?P<url>.*)$": {404},
    # Reorganisations sent without a body: the owner gets a field error, a stranger a refusal.
    "api/v1/^org-units/(?P<pk>[^/.]+)/move/$": {400},
    "api/v1/^org-units/(?P<pk>[^/.]+)/merge/$": {400},
    "api/v1/^org-units/(?P<pk>[^/.]+)/close/$": {400},  # the unit still has a member
    "api/v1/caller-id/": {400},  # no number given
    # The seeded import job has no checked file: its owner's tenant admin gets a state error.
    "api/v1/imports/<int:pk>/commit/": {400},
    "api/v1/imports/<int:pk>/check/": {400},
}
TENANT_OWN_HOST_BY_URL = {"/admin/tenants/": {404}}  # the app index of the hidden registry
PUBLIC_OWN_HOST = {
    "admin/logout/": {"302 /login/"},
    "admin/autocomplete/": {403},
    "admin/r/<path:content_type_id>/<path:object_id>/": {404},
    "admin/(?P<url>.*)$": {404},
    "admin/tenants/tenantevent/add/": {403},  # the audit trail is written by services only
}


def body_of(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def signature(response):
    return f"{response.status_code} {response['Location']}" if response.status_code == 302 else response.status_code


def is_login_redirect(response):
    # Relative, i.e. on the host that was asked: B's own login page, never A's.
    return response.status_code == 302 and response["Location"].startswith(("/login/", "/admin/login/"))


def assert_refused(response, route, context):
    ok = response.status_code in (401, 403, 404) or is_login_redirect(response)
    if route.key == "admin/logout/":
        ok = ok or signature(response) == "302 /admin/"  # the admin sends strangers to its index, a login gate
    assert ok, f"{context}: {signature(response)} is not a refusal"


def assert_works(response, expected, context):
    sig = signature(response)
    if sig in expected:
        return
    ok = response.status_code in expected and not is_login_redirect(response)
    assert ok, f"{context}: {sig}, expected {expected}"


def assert_private(response, markers, context):
    body = body_of(response) + " ".join(f"{k}: {v}" for k, v in response.items())
    leaked = [m for m in markers if m in body]
    assert not leaked, f"{context}: response shows {leaked}"


# --- The two tenants' (and the platform's) data --------------------------------------------

@dataclass
class Creds:
    label: str
    session: str | None = None
    token: str | None = None

    def each(self):
        """The session alone and the token alone: each must fail (or work) on its own."""
        return [Creds(f"{self.label}'s session", session=self.session), Creds(f"{self.label}'s token", token=self.token)]


@dataclass
class Objects:
    """The rows one schema's routes point at: explicit per model, else the model's newest row."""

    schema: str
    explicit: dict

    def value_of(self, model, attr, route):
        obj = self.explicit.get(model._meta.label_lower)
        if obj is None:
            with schema_context(self.schema):
                obj = model._default_manager.order_by("-pk").first()
        if obj is None:
            raise LookupError(f"{route}: schema {self.schema} has no {model._meta.label_lower} row; seed one")
        return getattr(obj, attr)

    def content_type_id(self, model):
        with schema_context(self.schema):
            return ContentType.objects.get_for_model(model).pk


def seed_tenant(info):
    """A second user, a group and tokens in a tenant, named so that a leak is recognisable.
    Returns the tenant's objects, its admin's token and what only its own people may see."""
    User = get_user_model()
    slug = info.slug
    with schema_context(info.schema_name):
        admin = User.objects.get(username=info.admin_email)
        secret = User.objects.create_user(
            f"{slug}-secret-user", email=f"{slug}.secret@{slug}.example", first_name=f"{slug.title()}ina", password=PASSWORD
        )
        group = Group.objects.create(name=f"{slug}-secret-group")
        secret.groups.add(group)
        admin_token = Token.objects.create(user=admin).key
        secret_token = Token.objects.create(user=secret)
        token_proxy = TokenProxy.objects.get(pk=secret_token.pk)
        # An org unit the secret user belongs to and holds a grant on: rows for the org and access routes.
        level = org_services.level_create(actor="pytest", code=f"{slug}-level", name=f"{slug.title()} secret level", rank=0)
        unit = org_services.unit_create(actor="pytest", code=f"{slug}-unit", name=f"{slug.title()} secret unit", level=level)
        permission_services.membership_add(actor="pytest", user=secret, unit=unit, role=Role.objects.get(code="account_manager"))
        permission_services.grant_add(actor="pytest", user=secret, obj=unit, action="change")
        archive = seed_archive(slug, secret, unit)
    objects = Objects(
        info.schema_name,
        {
            "auth.user": secret,
            "auth.group": group,
            "authtoken.tokenproxy": token_proxy,  # the token admin addresses tokens by user id
            "authtoken.token": secret_token,
            "tenants.tenant": info.tenant,
            "tenants.tenantevent": TenantEvent.objects.filter(tenant_slug=slug).latest("at"),
            **{obj._meta.label_lower: obj for obj in archive},
        },
    )
    people = [info.admin_email, secret.username, secret.email, secret.first_name, group.name, admin_token, secret_token.key,
              level.name, unit.name, *(str(obj) for obj in archive if str(obj).startswith(slug.title()))]
    return objects, admin_token, people


def seed_archive(slug, owner, unit):
    """A customer with something of every kind around it, and the secret user's import and export
    jobs: rows for the key-account routes, named so that a leak is recognisable."""
    from django.core.files.base import ContentFile

    from key_accounts import services as ka
    from key_accounts.models import ExportJob, GradingRule, ImportJob, Product

    title = slug.title()
    customer = ka.customer_create(actor="pytest", data={"name": f"{title} secret customer", "org_unit": unit,
                                                        "phone": "13800138000"})
    product = Product.objects.create(code=f"{slug}-product", name=f"{title} secret product", category="cloud")
    parts = [
        customer,
        product,
        ka.contact_save(actor="pytest", customer=customer, data={"name": f"{title} secret contact", "phones": "13900001111"}),
        ka.subscription_save(actor="pytest", customer=customer, data={"product": product, "start_date": "2026-01-01"}),
        ka.billing_account_save(actor="pytest", customer=customer, data={"number": f"{slug}-account"}),
        ka.interaction_save(actor="pytest", customer=customer, data={"channel": "web", "occurred_at": "2026-01-02T10:00:00+08:00",
                                                                     "subject": f"{title} secret visit"}),
    ]
    job = ImportJob(created_by=owner, original_name=f"{slug}-secret.csv", spec={})
    job.file.save(f"{slug}-secret.csv", ContentFile(b"name\n"), save=True)
    export = ExportJob.objects.create(created_by=owner, format="csv", status=ExportJob.Status.DONE)
    export.file.save(f"{slug}-secret-export.csv", ContentFile(b"secret\n"), save=True)
    rule = GradingRule.objects.create(grade="A", min_monthly_revenue=10000, min_products=2)
    return [*parts, job, export, rule]


def login(host, path, username, password):
    client = Client(HTTP_HOST=host)
    response = client.post(path, {"username": username, "password": password})  # no ?next=: LOGIN_REDIRECT_URL
    assert response.status_code == 302 and not is_login_redirect(response), f"login of {username} failed"
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@dataclass
class World:
    a_objects: Objects
    public_objects: Objects
    a: Creds
    b: Creds
    staff: Creds
    a_people: list  # A's users, groups, tokens: only A's people may see these
    a_private: list  # the above and A's name: never shown outside A's host
    b_people: list
    platform_private: list  # only platform staff may see these


@pytest.fixture
def world(alpha, beta, db):
    a_objects, a_token, a_people = seed_tenant(alpha)
    _, b_token, b_people = seed_tenant(beta)
    staff = get_user_model().objects.create_superuser("root@platform.example", "root@platform.example", PASSWORD)
    staff_token = Token.objects.create(user=staff)
    group = Group.objects.create(name="platform-secret-group")
    public_objects = Objects(
        "public",
        {
            "auth.user": staff,
            "auth.group": group,
            "authtoken.tokenproxy": TokenProxy.objects.get(pk=staff_token.pk),
            "authtoken.token": staff_token,
            "tenants.tenant": alpha.tenant,
            "tenants.tenantevent": TenantEvent.objects.filter(tenant_slug=alpha.slug).latest("at"),
        },
    )
    a_name, b_name = alpha.tenant.name, beta.tenant.name
    return World(
        a_objects=a_objects,
        public_objects=public_objects,
        a=Creds("A's admin", login(alpha.host, "/login/", alpha.admin_email, alpha.admin_password), a_token),
        b=Creds("B's admin", login(beta.host, "/login/", beta.admin_email, beta.admin_password), b_token),
        staff=Creds("staff", login(PUBLIC_HOST, "/admin/login/", staff.username, PASSWORD), staff_token.key),
        a_people=a_people,
        a_private=a_people + [a_name, *a_name.split(" ", 1)],  # either half of "阿尔法电信 Alpha Telecom"
        b_people=b_people,
        platform_private=[a_name, b_name, alpha.admin_email, beta.admin_email, staff.email, group.name, staff_token.key],
    )


def call(host, method, url, creds=None):
    client = Client(HTTP_HOST=host)
    extra = {}
    if creds and creds.session:
        client.cookies[settings.SESSION_COOKIE_NAME] = creds.session
    if creds and creds.token:
        extra["HTTP_AUTHORIZATION"] = f"Token {creds.token}"
    if method in ("put", "patch", "delete"):
        return getattr(client, method)(url, data="{}", content_type="application/json", **extra)
    return getattr(client, method)(url, **extra)


def fingerprint(*schemas):
    """Row counts of every concrete model that lives in each schema: tenant apps in tenant
    schemas, shared apps in public (sessions aside: a request may touch its own session)."""
    counts = {}
    for schema in schemas:
        app_names = settings.SHARED_APPS if schema == "public" else settings.TENANT_APPS
        with schema_context(schema):
            for app in apps.get_app_configs():
                if app.name not in app_names:
                    continue
                for model in app.get_models():
                    meta = model._meta
                    if meta.proxy or not meta.managed or meta.label_lower == "sessions.session":
                        continue
                    counts[(schema, meta.label_lower)] = model._default_manager.count()
    return counts


def primary_method(route):
    """What the positive control sends: GET, unless the route only takes something else."""
    if route.key in POST_ONLY:
        return "post"
    methods = methods_of(route)
    return "get" if "get" in methods else methods[0]


def attempts(route, open_routes):
    """Every method a stranger tries: all of them (DRF checks credentials before the method),
    or only the route's own for views anyone may call."""
    if route.key in open_routes:
        return [primary_method(route)]
    return ["get", *UNSAFE] if is_drf(route) else [m for m in ("get", *UNSAFE) if m in methods_of(route)]


# --- Tenant hosts ---------------------------------------------------------------------------

@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.key or "/")
def test_tenant_route_refuses_other_tenants_credentials(route, world, alpha, beta):
    urls = urls_for(route, world.a_objects, "kam.urls_tenant")
    schemas = (alpha.schema_name, beta.schema_name, "public")
    before = fingerprint(*schemas)
    is_open = route.key in TENANT_OPEN
    for url in urls:
        # A's session and A's token, with A's ids, on B's host: refused, and nothing of A or B shows.
        for creds in world.a.each():
            for method in attempts(route, TENANT_OPEN):
                context = f"{creds.label} {method.upper()} {url} on {beta.host}"
                response = call(beta.host, method, url, creds)
                assert response.status_code < 500, context
                if not is_open:
                    assert_refused(response, route, context)
                assert_private(response, world.a_private + world.b_people, context)
        # Platform staff's credentials do not reach into a tenant either.
        for creds in world.staff.each():
            context = f"{creds.label} {url} on {alpha.host}"
            response = call(alpha.host, primary_method(route), url, creds)
            assert response.status_code < 500, context
            if not is_open:
                assert_refused(response, route, context)
            assert_private(response, world.a_people, context)
        # B's own admin asking B's host for A's ids sees B's rows or nothing, never A's.
        context = f"B's admin {url} on {beta.host}"
        response = call(beta.host, "get" if primary_method(route) == "get" else "head", url, Creds("B", world.b.session))
        assert response.status_code < 500, context
        assert_private(response, world.a_private, context)
    assert fingerprint(*schemas) == before, "a refused request changed data"

    # Positive control: on A's own host A's credentials work.
    for url in urls:
        if is_open:
            assert call(alpha.host, primary_method(route), url).status_code < 400
            continue
        own = world.a.each() if is_drf(route) else world.a.each()[:1]
        for creds in own:
            expected = TENANT_OWN_HOST_BY_URL.get(url) or TENANT_OWN_HOST.get(route.key, {200, 302})
            response = call(alpha.host, primary_method(route), url, creds)
            assert_works(response, expected, f"{creds.label} {url} on {alpha.host}")


# --- The platform host ----------------------------------------------------------------------

@pytest.mark.parametrize("route", PUBLIC_ROUTES, ids=lambda r: r.key or "/")
def test_platform_route_refuses_tenant_credentials(route, world, alpha):
    urls = urls_for(route, world.public_objects, "kam.urls_public")
    before = fingerprint("public", alpha.schema_name)
    is_open = route.key in PUBLIC_OPEN
    for url in urls:
        for creds in world.a.each() + world.b.each():
            for method in attempts(route, PUBLIC_OPEN):
                context = f"{creds.label} {method.upper()} {url} on {PUBLIC_HOST}"
                response = call(PUBLIC_HOST, method, url, creds)
                assert response.status_code < 500, context
                if not is_open:
                    assert_refused(response, route, context)
                assert_private(response, world.platform_private + world.a_people + world.b_people, context)
    assert fingerprint("public", alpha.schema_name) == before, "a refused request changed data"

    # Positive control: platform staff get in.
    for url in urls:
        if is_open:
            assert call(PUBLIC_HOST, primary_method(route), url).status_code < 400
            continue
        own = world.staff.each() if is_drf(route) else world.staff.each()[:1]
        for creds in own:
            response = call(PUBLIC_HOST, primary_method(route), url, creds)
            assert_works(response, PUBLIC_OWN_HOST.get(route.key, {200, 302}), f"{creds.label} {url} on {PUBLIC_HOST}")


# --- The guard ------------------------------------------------------------------------------

def test_every_route_is_covered():
    """The parametrised routes are exactly what Django serves (as listed by admindocs' own
    walker), every URL argument has a way to be filled, and no expectation names a route
    that is gone (a stale name would hide a forgotten one)."""
    from django.contrib.admindocs.views import extract_views_from_urlpatterns

    for urlconf, covered, tables in (
        ("kam.urls_tenant", TENANT_ROUTES, [TENANT_OPEN, TENANT_OWN_HOST]),
        ("kam.urls_public", PUBLIC_ROUTES, [PUBLIC_OPEN, PUBLIC_OWN_HOST]),
    ):
        served = sorted(regex for _, regex, _, _ in extract_views_from_urlpatterns(get_resolver(urlconf).url_patterns))
        keys = sorted(route.key for route in covered)
        assert served == keys, f"{urlconf}: not covered: {set(served) ^ set(keys)}"
        assert len(set(keys)) == len(keys), f"{urlconf}: duplicate routes"
        for table in tables:
            assert set(table) <= set(keys), f"{urlconf}: expectations for missing routes: {set(table) - set(keys)}"
        problems = []
        for route in covered:
            try:
                kwarg_plan(route)
            except LookupError as exc:
                problems.append(str(exc))
        assert not problems, "\n".join(problems)
    assert POST_ONLY <= {r.key for r in TENANT_ROUTES + PUBLIC_ROUTES}


# --- Cache ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_cache_keys_are_per_tenant(alpha, beta):
    key = "isolation-test:greeting"
    try:
        with schema_context(alpha.schema_name):
            alpha_key = cache.make_key(key)
            cache.set(key, "hello from alpha", 60)
        with schema_context(beta.schema_name):
            beta_key = cache.make_key(key)
            assert cache.get(key) is None
            cache.set(key, "hello from beta", 60)
        with schema_context(alpha.schema_name):
            assert cache.get(key) == "hello from alpha"
        with schema_context(beta.schema_name):
            assert cache.get(key) == "hello from beta"
        assert alpha_key != beta_key
        assert alpha.schema_name in alpha_key and beta.schema_name in beta_key
    finally:
        for schema in (alpha.schema_name, beta.schema_name):
            with schema_context(schema):
                cache.delete(key)
