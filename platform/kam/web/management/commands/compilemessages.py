"""`kam compilemessages`: Django's command, without walking into .venv or node_modules
(whose own catalogues are not ours to compile)."""
from django.core.management.commands import compilemessages

from ._catalogues import IGNORED


class Command(compilemessages.Command):
    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options["ignore_patterns"], *IGNORED]
        return super().handle(*args, **options)
