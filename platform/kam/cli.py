"""`kam`: the command an operator runs.

    kam demo                 migrate, provision the demo tenant, serve web + worker + beat
    kam migrate              migrate the public schema, the template and every tenant (parallel)
    kam tenant create|list|suspend|reactivate|delete ...
    kam org import FILE --tenant SLUG [--dry-run] [--create-levels]    load an org tree (CSV)
    kam org tree --tenant SLUG                                         print a tenant's org tree
    kam worker | kam beat    Celery worker / beat for this deployment
    kam test [pytest args]   the whole test suite
    kam <django command>     any other manage.py command

With DATABASE_URL / REDIS_URL unset, an embedded PostgreSQL and Redis are started under var/.
"""
import os
import sys

from .embedded import ensure_services

ALIASES = {"migrate": "migrate_all"}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kam.settings.test" if command == "test" else "kam.settings.base")
    services = ensure_services()  # noqa: F841  (kept alive for the life of this process)

    if command == "test":
        import pytest

        return pytest.main(rest)
    if command == "demo":
        from .demo import run

        return run(rest)
    if command in {"worker", "beat"}:
        from .demo import celery_argv

        os.execvp(sys.executable, celery_argv(command) + rest)

    from django.core.management import execute_from_command_line

    execute_from_command_line(["kam", ALIASES.get(command, command), *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())
