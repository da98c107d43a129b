"""What `makemessages` and `compilemessages` need to know about this repository."""

# Folders holding no user-visible strings of ours: third-party code, data, tests, deployment files.
# Hidden folders (.git, .venv) are skipped as well.
IGNORED = [".*", "node_modules", "var", "tests", "build", "*.egg-info", "docs", "deploy", "helm"]
LOCALES = ["zh_Hans", "en"]
SOURCE_LOCALE = "en"  # the language of the msgids
