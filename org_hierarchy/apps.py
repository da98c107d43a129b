from django.apps import AppConfig


class OrgHierarchyConfig(AppConfig):
    name = "org_hierarchy"
    verbose_name = "Org hierarchy"
