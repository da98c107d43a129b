from django.apps import AppConfig


class KeyAccountsConfig(AppConfig):
    name = "key_accounts"
