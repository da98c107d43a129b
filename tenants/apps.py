from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = _("Tenants")

    def ready(self):
        from . import deletion, middleware

        deletion.install()  # the delete collector stays inside the current schema's tables
        middleware.connect_invalidation()  # writes to tenants and domains drop their cached hosts
