from django.conf import settings


def test_the_suite_runs_on_the_test_settings():
    """`kam test` and plain pytest both load kam.settings.test (importing kam must not pick one)."""
    assert settings.SETTINGS_MODULE == "kam.settings.test"
    assert settings.CELERY_TASK_DEFAULT_QUEUE.startswith("kam-test-") or settings.CELERY_TASK_DEFAULT_QUEUE != "kam"
