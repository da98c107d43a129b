from django.apps import AppConfig


class KeyAccountsConfig(AppConfig):
    name = "key_accounts"
    verbose_name = "Key accounts"

    def ready(self):
        from django.core.management.commands import makemigrations
        from django_tenants.management.commands import migrate_schemas

        from . import registration  # noqa: F401  (permissions registry)

        # pgtrigger (ready before us) gives makemigrations an autodetector that knows triggers;
        # django-tenants' migrate must use the same one, or Django's check refuses both commands.
        migrate_schemas.MigrateSchemasCommand.autodetector = makemigrations.Command.autodetector
