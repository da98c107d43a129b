"""Tenant routing by host name, plus the suspension gate.

Host -> tenant is cached in Redis (the tenant row as it was read, suspension status included), so
a request costs no domain lookup; every write to a tenant or a domain deletes the cached entries
of its host names, at once and again on commit (see ``forget_hosts``). A connection already on
the tenant's schema keeps its search_path: no ``SET search_path`` either.
"""
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name, get_tenant_domain_model

HOST_TTL = 10 * 60  # writes delete entries; the TTL only bounds what a write outside Django leaves


def _wants_json(request):
    return request.path.startswith("/api/")


def _host_key(hostname):
    return f"tenants:host:{hostname}"


def _in_public(func, *args):
    """Run a cache call with keys in the public schema's namespace (the cache prefixes keys with
    the connection's schema, whichever tenant the previous request left it on). Only the name is
    swapped: no query runs meanwhile, so the connection's search_path is untouched."""
    saved = connection.schema_name
    connection.schema_name = get_public_schema_name()
    try:
        return func(*args)
    finally:
        connection.schema_name = saved


def forget_hosts(hostnames):
    """Drop the cached tenants of ``hostnames`` now and, inside a transaction, again on commit
    (a request that read the old row meanwhile may have cached it again)."""
    keys = [_host_key(name.lower()) for name in hostnames if name]
    if not keys:
        return
    _in_public(cache.delete_many, keys)
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _in_public(cache.delete_many, keys), robust=True)


def remember_hosts(hostnames):
    """Cache the tenants of ``hostnames`` as the database has them now (warming the cache, e.g.
    after provisioning); unknown hosts are left out."""
    Domain = get_tenant_domain_model()
    saved = connection.tenant
    connection.set_schema_to_public()
    try:
        for domain in Domain.objects.select_related("tenant").filter(domain__in=[name.lower() for name in hostnames]):
            _in_public(cache.set, _host_key(domain.domain), domain.tenant, HOST_TTL)
    finally:
        connection.set_tenant(saved)


def _tenant_changed(sender, instance, **kwargs):
    # The domain table is in public, on every tenant's search_path too.
    forget_hosts(get_tenant_domain_model().objects.filter(tenant_id=instance.pk).values_list("domain", flat=True))


def _domain_renaming(sender, instance, **kwargs):
    # A renamed domain: its old name must stop routing at once.
    if instance.pk is not None:
        old = sender.objects.filter(pk=instance.pk).values_list("domain", flat=True).first()
        if old and old != instance.domain:
            forget_hosts([old])


def _domain_changed(sender, instance, **kwargs):
    forget_hosts([instance.domain])


def connect_invalidation():
    """Called from TenantsConfig.ready: every save or delete of a tenant or domain, wherever it
    is made (services, admin, CLI, shell), forgets the hosts involved."""
    from tenants.models import Domain, Tenant

    post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="tenant-hosts-save")
    post_delete.connect(_tenant_changed, sender=Tenant, dispatch_uid="tenant-hosts-delete")
    pre_save.connect(_domain_renaming, sender=Domain, dispatch_uid="domain-hosts-rename")
    post_save.connect(_domain_changed, sender=Domain, dispatch_uid="domain-hosts-save")
    post_delete.connect(_domain_changed, sender=Domain, dispatch_uid="domain-hosts-delete")


class TenantMiddleware(TenantMainMiddleware):
    """Resolve the tenant from the host (django-tenants) and refuse every request to a
    suspended tenant, so suspension takes effect on the very next request."""

    @staticmethod
    def hostname_from_request(request):
        # Host names are case-insensitive and may end in a dot (FQDN); domains are stored lower-case.
        return TenantMainMiddleware.hostname_from_request(request).lower().rstrip(".")

    def get_tenant(self, domain_model, hostname):
        key = _host_key(hostname)
        tenant = _in_public(cache.get, key)
        if tenant is None:
            connection.set_schema_to_public()  # the domain table lives there
            tenant = super().get_tenant(domain_model, hostname)  # DoesNotExist: not cached
            _in_public(cache.set, key, tenant, HOST_TTL)
        return tenant

    def process_request(self, request):
        # django-tenants' own, minus the switch to public before the (cached) domain lookup and
        # the SET search_path when the connection is already on this tenant's schema.
        from django.core.exceptions import DisallowedHost
        from django.http import HttpResponseNotFound

        try:
            hostname = self.hostname_from_request(request)
        except DisallowedHost:
            return HttpResponseNotFound()
        domain_model = get_tenant_domain_model()
        try:
            tenant = self.get_tenant(domain_model, hostname)
        except domain_model.DoesNotExist:
            connection.set_schema_to_public()
            return self.no_tenant_found(request, hostname)
        tenant.domain_url = hostname
        request.tenant = tenant
        if (connection.schema_name == tenant.schema_name and connection.search_path_set_schemas
                and connection.include_public_schema and connection.tenant is not None):
            connection.tenant = tenant  # same schema, search_path already set on this connection
        else:
            connection.set_tenant(tenant)
        self.setup_url_routing(request)

    def no_tenant_found(self, request, hostname):
        if _wants_json(request):
            return JsonResponse({"error": {"code": "not_found", "message": _("Not found.")}}, status=404)
        return TemplateResponse(request, "web/unknown_host.html", {"hostname": hostname}, status=404).render()

    def __call__(self, request):
        # process_request returns a response only when no tenant matches.
        response = self.process_request(request)
        if response is not None:
            return response
        tenant = request.tenant
        if tenant.schema_name != "public" and not tenant.is_active:
            message = _("This organisation's access has been suspended. Contact your platform administrator.")
            if _wants_json(request):
                return JsonResponse({"error": {"code": "tenant_suspended", "message": message}}, status=403)
            return TemplateResponse(request, "web/suspended.html", {"message": message}, status=403).render()
        return self.get_response(request)
