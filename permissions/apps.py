from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _invalidate(**kwargs):
    from .scope import invalidate_scopes

    invalidate_scopes()


class PermissionsConfig(AppConfig):
    name = "permissions"

    def ready(self):
        from org_hierarchy.models import OrgLevel, OrgUnit

        from . import registry, scope
        from .models import Membership, ModuleToggle, OrgUnitUserObjectPermission, Role

        registry.register(OrgUnit, resource="org_unit", unit_field="pk", grant_model=OrgUnitUserObjectPermission,
                          grant_actions=("view", "add", "change", "delete"))
        registry.register(Membership, resource="membership", unit_field="unit")

        # Services invalidate scopes themselves; these catch writes made elsewhere (admin, shell,
        # data migrations). Tree moves through treebeard use queryset updates, so the org
        # services still call invalidate_scopes() explicitly.
        for model in (OrgUnit, OrgLevel, Membership, Role, ModuleToggle, OrgUnitUserObjectPermission):
            post_save.connect(_invalidate, sender=model, dispatch_uid=f"scope-save-{model._meta.label}")
            post_delete.connect(_invalidate, sender=model, dispatch_uid=f"scope-delete-{model._meta.label}")
        scope.connect_request_memo()  # a tenant's scope generation is read once per request
