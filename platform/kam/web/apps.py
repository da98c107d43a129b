from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "kam.web"
    label = "kam_web"
    verbose_name = "KAM web shell"
