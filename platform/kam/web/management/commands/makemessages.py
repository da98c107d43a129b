"""`kam makemessages`: Django's command with this project's defaults.

Run from the repository root; it collects the strings of every app (kam, tenants, org_hierarchy, ...)
into platform/kam/locale for zh_Hans and en. English is the source language, so its catalogue is
filled with the msgids; the Chinese one is for translators. Then run `kam compilemessages`.
"""
import subprocess
from pathlib import Path

from django.core.management.commands import makemessages

from ._catalogues import IGNORED, LOCALES, SOURCE_LOCALE


class Command(makemessages.Command):
    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options["ignore_patterns"], *IGNORED]
        if not (options["locale"] or options["exclude"] or options["all"]):
            options["locale"] = list(LOCALES)
        # File-only locations keep diffs small; obsolete entries would only confuse translators.
        options["add_location"] = options["add_location"] or "file"
        options["no_obsolete"] = True
        return super().handle(*args, **options)

    def write_po_file(self, potfile, locale):
        if locale != SOURCE_LOCALE:
            return super().write_po_file(potfile, locale)
        # msgmerge's fuzzy guesses from a neighbouring string would be wrong English text.
        merge_options = self.msgmerge_options
        self.msgmerge_options = [*merge_options, "--no-fuzzy-matching"]
        try:
            super().write_po_file(potfile, locale)
        finally:
            self.msgmerge_options = merge_options
        po = Path(potfile).parent / locale / "LC_MESSAGES" / f"{self.domain}.po"
        wrap = ["--no-wrap"] if "--no-wrap" in merge_options else []
        subprocess.run(["msgen", *wrap, "-o", str(po), str(po)], check=True)
