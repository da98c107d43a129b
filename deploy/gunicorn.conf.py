"""gunicorn for the web container: `gunicorn -c deploy/gunicorn.conf.py kam.wsgi:application`.

Sizes come from KAM_WEB_WORKERS / KAM_WEB_THREADS / KAM_WEB_TIMEOUT, read in kam.settings.env
like every other variable. Logs are JSON lines on stdout, like the application's own
(KAM_LOG_FORMAT=text gives plain lines). Command-line flags still override these values.
"""
import os

from gunicorn import glogging

from kam.settings import env

bind = "0.0.0.0:8000"
proc_name = "kam-web"
worker_class = "gthread"
workers = env.WEB_WORKERS
threads = env.WEB_THREADS
timeout = env.WEB_TIMEOUT
graceful_timeout = 30
keepalive = 5  # nginx and the ingress reuse upstream connections
# Recycle workers now and then so a slow leak never grows unbounded; jitter staggers them.
max_requests = 2000
max_requests_jitter = 200
# Heartbeat files on tmpfs: a slow disk-backed /tmp makes the arbiter kill healthy workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No gunicornc control socket: nobody uses it in a container, and it needs a writable $HOME.
control_socket_disable = True

loglevel = env.LOG_LEVEL.lower()
errorlog = "-"
accesslog = "-"


class JsonAccessLogger(glogging.Logger):
    """Access lines as fields for the JSON formatter, so quotes in a URL never break a line."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
            headers = {name.lower(): value for name, value in resp.headers}
            fields = {
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("RAW_URI"),
                "status": int(status),
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                # The tenant is the host's first label; the app's own lines carry its schema.
                "host": environ.get("HTTP_HOST", "-"),
                "remote_addr": environ.get("REMOTE_ADDR", "-"),
                "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR", "-"),
                "user_agent": environ.get("HTTP_USER_AGENT", "-"),
                # The app echoes the proxy's id or makes one; either way it is on the response.
                "request_id": headers.get("x-request-id") or environ.get("HTTP_X_REQUEST_ID", "-"),
            }
            self.access_log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
        except Exception:
            self.exception("access log failed")


if env.LOG_FORMAT == "json":
    logger_class = JsonAccessLogger
    _json = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        # With the offset: the master logs in the container's zone, workers in TIME_ZONE.
        "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"level": env.LOG_LEVEL, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": env.LOG_LEVEL, "handlers": ["stdout"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms host=%({host}i)s request_id=%({x-request-id}o)s'
