from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Reporting"

    def ready(self):
        from . import signals  # noqa: F401  (billing records and re-orgs mark roll-ups dirty)
