"""Real processes for tests: a web server and a Celery worker on the test database."""
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager

from django.conf import settings
from django.db import connection


def test_database_url():
    """The URL of the database pytest-django created, for child processes."""
    db = connection.settings_dict
    host = db.get("HOST") or ""
    host = urllib.parse.quote(host, safe="") if host.startswith("/") else host
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{urllib.parse.quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def child_env(**extra):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DJANGO_SETTINGS_MODULE="kam.settings.test",
        KAM_CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        KAM_LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def web_server(log_path):
    """gunicorn serving the project on a free port; yields the port."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "kam.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "4", "--timeout", "60"],
            env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", process, log_path)
            yield port
        finally:
            _stop(process)


@contextmanager
def celery_worker(log_path, *extra_args):
    """A real Celery worker on the test queue; yields the process."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kam", "worker", "--pool", "solo", "--concurrency", "1",
             "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--without-gossip", "--without-mingle", "--loglevel", "INFO",
             *extra_args],
            env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            _stop(process)


def _wait_for(url, process, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early; see {log_path}:\n{open(log_path).read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} within {timeout}s; see {log_path}")
