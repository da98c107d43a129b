"""Deployment artefacts (deploy/, helm/kam/) checked without Docker or helm, which this machine
lacks: files parse, every environment variable they set is one KAM reads, probes and commands
point at things that exist, beat stays single, and gunicorn with deploy/gunicorn.conf.py really
serves the probes and writes JSON access lines."""
import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

import kam.cli
from tests.support.processes import child_env, free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = REPO / "helm" / "kam"
TEMPLATES = CHART / "templates"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"

# Variables for the Python interpreter and pip in the image, not for KAM.
INTERPRETER_VARS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
KAM_IMAGE = "kam:local"


# --- what KAM reads ---------------------------------------------------------------------------

def _names_read_in(path):
    """Names passed to os.environ.get / os.environ[...] / env.py's _bool and _list helpers."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in {"get", "getenv", "_bool", "_list"}:
                names.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
                names.add(node.slice.value)
    return {name for name in names if isinstance(name, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


def known_variables():
    settings = REPO / "platform" / "kam"
    # env.py reads the settings' variables; paths.py only KAM_VAR_DIR; Django reads its own.
    return _names_read_in(settings / "settings" / "env.py") | _names_read_in(settings / "paths.py") | {"DJANGO_SETTINGS_MODULE"}


def test_the_variable_parser_finds_what_env_py_reads():
    known = known_variables()
    expected = {"DATABASE_URL", "REDIS_URL", "KAM_SECRET_KEY", "KAM_DEBUG", "KAM_ALLOWED_HOSTS", "KAM_VAR_DIR",
                "KAM_WEB_WORKERS", "KAM_WEB_THREADS", "KAM_WEB_TIMEOUT", "DJANGO_SETTINGS_MODULE"}
    assert expected <= known


# --- what deploy/ and helm/ set -----------------------------------------------------------------

def _dockerfile_lines():
    """Logical lines of deploy/Dockerfile: continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _dockerfile_stages():
    stages, current = [], None
    for line in _dockerfile_lines():
        if line.upper().startswith("FROM "):
            current = {"from": line, "lines": []}
            stages.append(current)
        elif current is not None:
            current["lines"].append(line)
    return stages


def dockerfile_variables():
    names = set()
    for line in _dockerfile_lines():
        if line.upper().startswith("ENV "):
            names |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", line[4:]))
        names |= set(re.findall(r"export\s+([A-Z_][A-Z0-9_]*)=", line))
        names |= set(re.findall(r"\s([A-Z][A-Z0-9_]+)=\S", line)) if line.upper().startswith("RUN ") else set()
    return names


def compose():
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def kam_services():
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == KAM_IMAGE}


def compose_variables():
    return {name for svc in kam_services().values() for name in svc.get("environment", {})}


def values():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def template(name):
    return (TEMPLATES / name).read_text()


def helm_variables():
    v = values()
    names = set(v["config"]) | {key for key in v["secret"] if key != "existingSecret"}
    for path in TEMPLATES.glob("*.yaml"):
        text = path.read_text()
        names |= set(re.findall(r"-\s+name:\s+([A-Z][A-Z0-9_]+)\s*$", text, re.M))  # env: entries
    for name in ("configmap.yaml", "secret.yaml"):
        names |= set(re.findall(r"^\s{2}([A-Z][A-Z0-9_]+):", template(name), re.M))  # data keys
    return names


@pytest.mark.parametrize(
    "source, collect, must_include",
    [
        ("deploy/Dockerfile", dockerfile_variables, {"DJANGO_SETTINGS_MODULE", "KAM_STATIC_ROOT", "DATABASE_URL"}),
        ("deploy/docker-compose.yml", compose_variables, {"DATABASE_URL", "REDIS_URL", "KAM_SECRET_KEY", "KAM_WEB_WORKERS"}),
        ("helm/kam", helm_variables, {"DATABASE_URL", "KAM_BASE_DOMAIN", "KAM_WEB_WORKERS", "KAM_MIGRATION_PARALLEL"}),
    ],
)
def test_every_variable_set_for_kam_is_one_kam_reads(source, collect, must_include):
    names = collect()
    assert must_include <= names, f"{source}: the collector missed {must_include - names}"
    unknown = names - known_variables() - INTERPRETER_VARS
    assert not unknown, f"{source} sets variables nothing in kam reads (typo?): {sorted(unknown)}"


def test_configuration_doc_lists_every_variable():
    doc = (REPO / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in known_variables() if f"`{name}`" not in doc)
    assert not missing, f"docs/configuration.md does not describe {missing}"


# --- commands ----------------------------------------------------------------------------------

def cli_commands():
    return set(re.findall(r"\bkam ([a-z][a-z_-]*)", kam.cli.__doc__))


def test_cli_docstring_commands_are_found():
    assert {"migrate", "tenant", "worker", "beat"} <= cli_commands()


def test_compose_kam_services_run_documented_commands_and_gunicorn():
    services = kam_services()
    assert {"migrate", "web", "worker", "beat"} <= set(services)
    for name, svc in services.items():
        if svc.get("entrypoint"):
            assert svc["entrypoint"] == ["gunicorn"], name
            _assert_gunicorn_args(svc["command"])
        else:
            assert svc["command"][0] in cli_commands(), f"{name}: `kam {svc['command'][0]}` is not a kam command"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    # The local stack's database is PostgreSQL 18, its migrations a one-shot before everything.
    assert compose()["services"]["postgres"]["image"].startswith("postgres:18")
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])


def _assert_gunicorn_args(args):
    config = args[args.index("-c") + 1]
    assert config == "/app/deploy/gunicorn.conf.py"  # /app is the image's WORKDIR
    assert args[-1] == "kam.wsgi:application"
    assert (REPO / "platform" / "kam" / "wsgi.py").exists()


def _template_args(name):
    match = re.search(r"^\s+args:\s*(\[.*\])\s*$", template(name), re.M)
    return yaml.safe_load(re.sub(r"\{\{.*?\}\}", '"X"', match.group(1)))


def test_helm_containers_run_documented_commands_and_gunicorn():
    assert _template_args("worker-deployment.yaml")[0] == "worker"
    assert _template_args("beat-deployment.yaml") == ["beat"]
    assert _template_args("migrate-job.yaml") == ["migrate"]
    for name in ("worker-deployment.yaml", "beat-deployment.yaml", "migrate-job.yaml"):
        assert _template_args(name)[0] in cli_commands(), name
    web = template("web-deployment.yaml")
    assert 'command: ["gunicorn"]' in web
    _assert_gunicorn_args(_template_args("web-deployment.yaml"))


# --- the chart ------------------------------------------------------------------------------------

def test_chart_metadata_matches_the_project():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2" and chart["name"] == "kam" and chart["type"] == "application"
    assert chart["appVersion"] == project["version"]
    assert yaml.safe_load((CHART / "ci" / "test-values.yaml").read_text())["secret"]["KAM_SECRET_KEY"]


def test_probes_point_at_healthz_and_readyz():
    web = values()["web"]
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    deployment = template("web-deployment.yaml")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert f"toYaml .Values.web.{probe} " in deployment
    assert re.search(r"- name: http\s+containerPort: 8000", deployment)


def test_beat_is_exactly_one_pod():
    beat = template("beat-deployment.yaml")
    assert re.search(r"^spec:\n  replicas: 1\n  strategy:\n    type: Recreate\n", beat, re.M)
    assert ".Values.beat.replicas" not in beat
    assert set(values()["beat"]) <= {"resources", "persistence", "nodeSelector", "tolerations", "affinity"}
    scaled = re.search(r"range \$component := list (.*?) \}\}", template("hpa.yaml")).group(1)
    assert scaled.split() == ['"web"', '"worker"']
    assert not compose()["services"]["beat"].get("deploy", {}).get("replicas", 1) > 1


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook_after_their_config():
    job = template("migrate-job.yaml")
    assert "helm.sh/hook: pre-install,pre-upgrade" in job
    assert "restartPolicy: Never" in job
    # The job reads the ConfigMap and Secret, so those are hooks too, with a lower weight.
    helpers = template("_helpers.tpl")
    assert 'helm.sh/hook-weight: "-10"' in helpers and 'helm.sh/hook-weight: "0"' in job
    for name in ("configmap.yaml", "secret.yaml"):
        assert 'include "kam.preHookAnnotations"' in template(name)


def test_both_scaled_components_have_autoscaling_values():
    for component in ("web", "worker"):
        scaling = values()[component]["autoscaling"]
        assert set(scaling) == {"enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"}
        assert 1 <= scaling["minReplicas"] <= scaling["maxReplicas"]


def _actions(text):
    return [a for a in re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, re.S) if not a.startswith("/*")]


@pytest.mark.parametrize("path", sorted(p.name for p in TEMPLATES.iterdir()))
def test_template_blocks_are_balanced_and_references_resolve(path):
    text = template(path)
    assert text.count("{{") == text.count("}}")
    depth = 0
    for action in _actions(text):
        word = action.split(None, 1)[0] if action else ""
        depth += word in {"if", "range", "with", "define", "block"}
        depth -= word == "end"
        assert depth >= 0, f"{path}: `end` without a block"
    assert depth == 0, f"{path}: a block is never closed"

    defined = set(re.findall(r'define "([^"]+)"', template("_helpers.tpl")))
    for name in re.findall(r'(?:include|template) "([^"]+)"', text):
        assert name in defined, f"{path}: include of undefined {name!r}"

    tree = values()
    for dotted in re.findall(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
        node = tree
        for key in dotted.strip(".").split("."):
            assert isinstance(node, dict) and key in node, f"{path}: .Values{dotted} is not in values.yaml"
            node = node[key]


def test_ingress_routes_the_base_domain_and_every_tenant_subdomain():
    ingress = template("web-ingress.yaml")
    assert 'list .Values.baseDomain (printf "*.%s" .Values.baseDomain)' in ingress
    assert "name: {{ include \"kam.fullname\" $ }}-web" in ingress


# --- the image -----------------------------------------------------------------------------------

def test_dockerfile_builds_assets_with_npm_and_runs_kam_as_non_root():
    stages = _dockerfile_stages()
    assert len(stages) >= 3
    assets, final = stages[0], stages[-1]
    assert "node:" in assets["from"] and any(line.startswith("RUN npm ci") for line in assets["lines"])
    build = "\n".join(line for stage in stages[:-1] for line in stage["lines"])
    assert "kam collectstatic --noinput" in build
    users = [line.split()[1] for line in final["lines"] if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["kam"]' in final["lines"]
    assert any("KAM_STATIC_ROOT=/app/static" in line for line in final["lines"] if line.startswith("ENV "))
    for line in _dockerfile_lines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert source == "." or (REPO / source).exists(), source


def test_dockerignore_keeps_local_state_out_and_the_gunicorn_config_in():
    ignored = {line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "node_modules", "var"} <= ignored
    assert not {"deploy", "deploy/gunicorn.conf.py", "platform", "pyproject.toml"} & ignored


# --- nginx ------------------------------------------------------------------------------------------

def test_nginx_proxies_tenant_hosts_to_web_and_serves_nothing_itself():
    conf = (DEPLOY / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert code.count("{") == code.count("}")
    server_names = re.findall(r"server_name\s+([^;]+);", code)
    assert any({"example.com", "*.example.com"} <= set(names.split()) for names in server_names)
    assert re.search(r"upstream kam_web \{\s*server web:8000;", code)  # compose's service and gunicorn's bind
    assert set(re.findall(r"proxy_pass\s+([^;]+);", code)) == {"http://kam_web"}
    for directive in ("root", "alias", "try_files", "autoindex"):
        assert not re.search(rf"^\s*{directive}\s", code, re.M), directive
    main = code[code.index("location / {"):]
    for header in ("Host", "X-Request-ID", "X-Forwarded-Proto"):
        assert re.search(rf"proxy_set_header {header} \$", main), header
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", code).group(1))
    assert read_timeout > _gunicorn_settings({})["timeout"]


# --- gunicorn --------------------------------------------------------------------------------------

_LOAD = """
import json, runpy, sys
from gunicorn.config import Config
cfg = Config()
for key, value in runpy.run_path(sys.argv[1]).items():
    if key in cfg.settings:
        cfg.set(key, value)  # gunicorn's own validators
print(json.dumps({
    "workers": cfg.workers, "threads": cfg.threads, "timeout": cfg.timeout, "graceful_timeout": cfg.graceful_timeout,
    "worker_class": cfg.worker_class_str, "bind": cfg.bind, "accesslog": cfg.accesslog,
    "logger_class": cfg.logger_class.__name__, "json_logs": bool(cfg.logconfig_dict),
}))
"""


def _gunicorn_settings(extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAM_WEB_") and k != "KAM_LOG_FORMAT"}
    env.update(extra_env)
    out = subprocess.run([sys.executable, "-c", _LOAD, str(GUNICORN_CONF)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_gunicorn_config_defaults_match_the_chart():
    settings = _gunicorn_settings({})
    web = values()["web"]
    assert (settings["workers"], settings["threads"], settings["timeout"]) == (web["workers"], web["threads"], web["timeout"])
    assert settings["worker_class"] == "gthread" and settings["bind"] == ["0.0.0.0:8000"]
    assert settings["accesslog"] == "-" and settings["json_logs"] and settings["logger_class"] == "JsonAccessLogger"
    # Kubernetes must wait for gunicorn's graceful shutdown (plus the preStop pause).
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", template("web-deployment.yaml")).group(1))
    assert grace > settings["graceful_timeout"] + 5


def test_gunicorn_sizes_and_log_format_come_from_the_environment():
    settings = _gunicorn_settings({"KAM_WEB_WORKERS": "3", "KAM_WEB_THREADS": "5", "KAM_WEB_TIMEOUT": "90", "KAM_LOG_FORMAT": "text"})
    assert (settings["workers"], settings["threads"], settings["timeout"]) == (3, 5, 90)
    assert not settings["json_logs"] and settings["logger_class"] == "Logger"


def _get(url, host, **headers):
    request = urllib.request.Request(url, headers={"Host": host, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.django_db  # so pytest-django creates the test database even when this test runs alone
def test_gunicorn_with_the_deploy_config_serves_probes_on_any_host_and_logs_json(tenants, tmp_path):
    port = free_port()
    env = child_env(DJANGO_SETTINGS_MODULE="kam.settings.production", KAM_SECRET_KEY="test-only", KAM_LOG_FORMAT="json",
                    KAM_WEB_WORKERS="1", KAM_WEB_THREADS="2")
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}", "kam.wsgi:application"],
            env=env, stdout=out, stderr=err, cwd=REPO,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr.read_text()[-3000:]
            try:
                live = _get(f"{base}/healthz", "10.1.2.3:8000", **{"X-Request-ID": "probe-123"})
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
                time.sleep(0.2)
        ready = _get(f"{base}/readyz", "no-such-tenant.example.net")
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert live[0] == 200 and live[2] == {"status": "ok"} and live[1]["X-Request-ID"] == "probe-123"
    assert ready[0] == 200, ready[2]
    assert ready[2]["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}

    lines = [json.loads(line) for line in stdout.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    healthz = next(line for line in access if line["path"] == "/healthz")
    assert healthz["status"] == 200 and healthz["request_id"] == "probe-123" and healthz["host"] == "10.1.2.3:8000"
    readyz = next(line for line in access if line["path"] == "/readyz")
    assert readyz["request_id"] == ready[1]["X-Request-ID"] and readyz["duration_ms"] >= 0
    booted = [line for line in lines if line["message"].startswith("Booting worker")]
    assert len(booted) == 1  # KAM_WEB_WORKERS=1


@pytest.mark.django_db
def test_kam_worker_logs_json_lines_like_the_web(tenants, tmp_path):
    """`kam worker` as deployed: Celery keeps the settings' JSON logging (kam.celery's
    setup_logging hook) instead of its own text format."""
    from kam.tasks import tenant_probe

    alpha = tenants["alpha"]
    queue = f"kam-deploy-test-{os.getpid()}"
    env = child_env(DJANGO_SETTINGS_MODULE="kam.settings.production", KAM_SECRET_KEY="test-only", KAM_LOG_FORMAT="json",
                    KAM_CELERY_QUEUE=queue)
    log = tmp_path / "worker.log"
    kam_script = Path(sys.executable).with_name("kam")
    with open(log, "w") as out:
        process = subprocess.Popen([str(kam_script), "worker", "--pool", "solo", "--without-gossip", "--without-mingle"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        result = tenant_probe.apply_async(headers={"_schema_name": alpha.schema_name}, queue=queue)
        assert result.get(timeout=60)["schema"] == alpha.schema_name
    finally:
        process.terminate()
        process.wait(timeout=30)

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert all({"time", "level", "logger", "message", "tenant", "request_id"} <= set(line) for line in lines)
    assert any(line["message"].endswith(" ready.") for line in lines)
    succeeded = next(line for line in lines if line["message"].startswith(f"Task kam.tasks.tenant_probe[{result.id}] succeeded"))
    assert succeeded["tenant"] == alpha.schema_name  # the task's tenant, for every line it logs
