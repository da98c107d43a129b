"""Translation catalogues: complete, in step with the source, compiled, and used by the pages.

When a test here fails after you added or changed a UI string, run from the repository root:
    kam makemessages       # collects every app's strings into platform/kam/locale
    (translate the new zh_Hans entries, remove their "fuzzy" flags)
    kam compilemessages    # the .mo files are committed next to the .po files
"""
import gettext
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils.translation import to_locale

from kam.web.management.commands._catalogues import IGNORED

LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
LOCALES = [to_locale(code) for code, _ in settings.LANGUAGES]
HOW_TO_FIX = "run `kam makemessages`, translate the zh_Hans entries, then `kam compilemessages`"


@dataclass
class Entry:
    fields: dict = field(default_factory=dict)  # msgctxt, msgid, msgid_plural, msgstr, msgstr[0], ...
    flags: set = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self):
        return self.fields.get("msgctxt"), self.fields["msgid"], self.fields.get("msgid_plural")

    @property
    def translations(self):
        return [text for name, text in self.fields.items() if name.startswith("msgstr")]


def parse_po(path):
    """The entries of a .po file, header first; small on purpose (no third-party parser)."""
    entries, entry, current = [], Entry(), None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if line.startswith("#~"):
            entry.obsolete, line = True, line[2:].strip()
        if not line:
            if "msgid" in entry.fields:
                entries.append(entry)
            entry, current = Entry(), None
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith(("#", "|")):
            continue
        elif line.startswith('"'):
            entry.fields[current] += json.loads(line)
        else:
            current, _, value = line.partition(" ")
            entry.fields[current] = json.loads(value)
    return entries


def catalogue(locale):
    return LOCALE_DIR / locale / "LC_MESSAGES" / "django.po"


def messages(locale):
    header, *entries = parse_po(catalogue(locale))
    assert header.key == (None, "", None), f"{locale}: the header must come first"
    return header, entries


def test_every_language_has_a_catalogue():
    assert LOCALES == ["zh_Hans", "en"]
    for locale in LOCALES:
        assert catalogue(locale).is_file() and catalogue(locale).with_suffix(".mo").is_file(), locale


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_is_fully_translated_and_not_fuzzy(locale):
    header, entries = messages(locale)
    assert "fuzzy" not in header.flags, f"{locale}: the header is marked fuzzy"
    assert entries, f"{locale}: no messages at all"
    fuzzy = [e.fields["msgid"] for e in entries if "fuzzy" in e.flags]
    untranslated = [e.fields["msgid"] for e in entries if not all(e.translations)]
    obsolete = [e.fields["msgid"] for e in entries if e.obsolete]
    assert not fuzzy, f"{locale}: fuzzy entries (check and unmark them): {fuzzy}"
    assert not untranslated, f"{locale}: untranslated entries ({HOW_TO_FIX}): {untranslated}"
    assert not obsolete, f"{locale}: obsolete entries ({HOW_TO_FIX}): {obsolete}"


def test_chinese_catalogue_is_chinese():
    """A copied English msgid is not a translation; only names and codes may stay in Latin letters."""
    _, entries = messages("zh_Hans")
    kept_as_is = {"API", "ARPU", "ARPA"}  # telecom terms Chinese operators write in Latin letters
    english = [e.fields["msgid"] for e in entries
               if e.fields["msgid"] not in kept_as_is and not any("\u4e00" <= ch <= "\u9fff" for ch in "".join(e.translations))]
    assert not english, f"zh_Hans entries without any Chinese: {english}"


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_passes_msgfmt_checks(locale, tmp_path):
    """Placeholders such as %(slug)s must survive translation, and the header must be valid."""
    result = subprocess.run(
        ["msgfmt", "--check", "-o", str(tmp_path / "django.mo"), str(catalogue(locale))],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def _copy_sources(destination):
    """The repository's source files, without what makemessages would skip anyway (.venv, node_modules...)."""
    ignored = shutil.ignore_patterns(*IGNORED, "__pycache__")

    def ignore(folder, names):
        skipped = set(ignored(folder, names))
        for name in names:
            path = Path(folder) / name
            if path.is_file() and path.suffix not in {".py", ".html", ".txt", ".po"}:
                skipped.add(name)
        return skipped

    shutil.copytree(settings.BASE_DIR, destination, ignore=ignore, symlinks=True)


def test_catalogues_hold_every_string_of_the_source(tmp_path, monkeypatch):
    """Run the project's makemessages over a copy of the sources and compare the msgids:
    nothing in the code may be missing from the catalogues, and nothing stale may linger."""
    copy = tmp_path / "src"
    _copy_sources(copy)
    relative = LOCALE_DIR.relative_to(settings.BASE_DIR)
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[str(copy / relative)]):
        call_command("makemessages", verbosity=0)
    for locale in LOCALES:
        committed = {e.key for e in messages(locale)[1]}
        fresh = {e.key for e in parse_po(copy / relative / locale / "LC_MESSAGES" / "django.po")[1:]}
        assert not fresh - committed, f"{locale}: strings in the source but not in the catalogue ({HOW_TO_FIX}): {sorted(fresh - committed, key=str)}"
        assert not committed - fresh, f"{locale}: catalogue entries no longer in the source ({HOW_TO_FIX}): {sorted(committed - fresh, key=str)}"


@pytest.mark.parametrize("locale", LOCALES)
def test_committed_mo_files_are_compiled_from_the_current_po_files(locale, tmp_path):
    fresh_mo = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh_mo), str(catalogue(locale))], check=True)
    committed_mo = catalogue(locale).with_suffix(".mo")
    with fresh_mo.open("rb") as fresh, committed_mo.open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(fresh)._catalog, (
            f"{committed_mo} is out of date: run `kam compilemessages`"
        )


# --- The pages in both languages -----------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(
    "how, expected_lang, expected_text",
    [
        ({}, "zh-hans", "登录"),  # the default language
        ({"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}, "zh-hans", "登录"),
        ({"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}, "en", "Log in"),
        ({"cookie": "en", "HTTP_ACCEPT_LANGUAGE": "zh-CN"}, "en", "Log in"),  # the cookie wins
        ({"cookie": "zh-hans", "HTTP_ACCEPT_LANGUAGE": "en"}, "zh-hans", "登录"),
    ],
)
def test_login_page_renders_in_the_requested_language(alpha, how, expected_lang, expected_text):
    how = dict(how)
    cookie = how.pop("cookie", None)
    client = alpha.client(**how)
    if cookie:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{expected_lang}">' in html
    assert f'<h1 class="h3 mb-2">{expected_text}</h1>' in html
    assert response["Content-Language"] == expected_lang


@pytest.mark.django_db
@pytest.mark.parametrize(
    "language, strings",
    [
        # "退出登录" is ours: Django's own zh_Hans catalogue says "注销", so this proves ours wins.
        ("zh-hans", ["退出登录", "欢迎，", "当前组织：", "查看 API 文档"]),
        ("en", ["Log out", "Welcome, ", "You are working in", "Open the API documentation"]),
    ],
)
def test_home_page_renders_in_both_languages(alpha, language, strings):
    client = alpha.client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.post("/login/", {"username": alpha.admin_email, "password": alpha.admin_password}, follow=True)
    html = response.content.decode()
    for text in strings:
        assert text in html, f"{text!r} missing from the {language} home page"


@pytest.mark.django_db
def test_the_language_switch_sets_the_cookie_and_returns_to_the_page(alpha):
    client = alpha.client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Log in" in client.get("/login/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})
    assert "登录" in client.get("/login/").content.decode()
