"""The production set-up files name real entry points and parse: Procfile, gunicorn.conf.py, the
systemd units and the nginx site; and the app believes its proxy (ProxyFix) only when told to."""

import datetime
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import request

from app import create_app
from app.jobs import QUEUES
from app.services.doctor import WORKER_COMMANDS
from config import TestingConfig

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYSTEMD = ROOT / "deploy" / "systemd"
NGINX_SITE = ROOT / "deploy" / "nginx" / "daystar.conf"
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def procfile() -> dict[str, list[str]]:
    """Each process type's command as words, without leading VAR=value assignments."""
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip():
            continue
        name, _, command = line.partition(":")
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"bad process type {name!r}"
        assert name not in processes, f"{name} twice"
        words = shlex.split(command)
        while words and ASSIGNMENT.match(words[0]):
            words.pop(0)
        processes[name] = words
    return processes


def production_env(tmp_path, **extra) -> dict:
    """A production environment with throwaway secrets, as a deployment sets it."""
    skipped = ("DAYSTAR_", "GUNICORN_", "PORT", "WEB_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
    env.update(
        DAYSTAR_ENV="production",
        SECRET_KEY="s" * 48,
        DAYSTAR_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path}/production.db",
        REDIS_URL="redis://127.0.0.1:6379/0",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        **extra,
    )
    return env


def run(words: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (our own commands)
        words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# --- Procfile ----------------------------------------------------------------------------------


def test_procfile_processes_cover_every_queue_and_one_cron():
    processes = procfile()
    assert set(processes) >= {"web", "release", "cron"}
    workers = {name: words for name, words in processes.items() if words[1:2] == ["worker.py"]}
    crons = [name for name, words in workers.items() if "--cron" in words]
    assert crons == ["cron"], "exactly one cron scheduler"
    listened = {w for words in workers.values() if "--cron" not in words for w in words[2:]}
    assert set(QUEUES) <= listened
    # The doctor's fix text names the same commands.
    commands = {" ".join(words) for words in processes.values()}
    assert set(WORKER_COMMANDS.values()) <= commands


def test_procfile_worker_commands_are_accepted_by_worker_py(tmp_path):
    answer = run([sys.executable, "worker.py", "--help"], production_env(tmp_path))
    assert answer.returncode == 0, answer.stderr
    for name, words in procfile().items():
        if words[:2] != ["python", "worker.py"]:
            continue
        for word in words[2:]:
            if word.startswith("-"):
                assert word in answer.stdout, f"{name}: worker.py has no option {word}"
            else:
                assert word in QUEUES, f"{name}: {word} is not a queue"


def test_procfile_web_command_passes_gunicorn_check_config(tmp_path):
    words = procfile()["web"]
    assert words[0] == "gunicorn" and words[-1] == "wsgi:app"
    assert words[words.index("-c") + 1] == "gunicorn.conf.py"
    env = production_env(tmp_path, PORT="5123")
    answer = run([str(BIN / "gunicorn"), "--check-config", *words[1:]], env)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    shown = run([str(BIN / "gunicorn"), "--print-config", *words[1:]], env)
    assert re.search(r"^bind\s+= \['0\.0\.0\.0:5123'\]", shown.stdout, re.M), shown.stdout


def test_gunicorn_check_config_fails_without_production_secrets(tmp_path):
    env = production_env(tmp_path)
    del env["DAYSTAR_ENCRYPTION_KEY"]
    answer = run(
        [str(BIN / "gunicorn"), "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"], env
    )
    assert answer.returncode != 0
    assert "DAYSTAR_ENCRYPTION_KEY" in answer.stdout + answer.stderr


def test_procfile_release_runs_the_migrations_command(tmp_path):
    words = procfile()["release"]
    assert words == ["flask", "--app", "wsgi", "db", "upgrade"]
    answer = run([str(BIN / "flask"), *words[1:], "--help"], production_env(tmp_path))
    assert answer.returncode == 0, answer.stderr
    assert "Upgrade to a later version" in answer.stdout


# --- gunicorn.conf.py --------------------------------------------------------------------------


def gunicorn_settings(monkeypatch, **env) -> dict:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_BIND", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_settings_follow_the_environment(monkeypatch):
    defaults = gunicorn_settings(monkeypatch)
    assert defaults["bind"] == "127.0.0.1:8000"  # never around the proxy by default
    assert defaults["workers"] == defaults["default_workers"]()
    assert defaults["default_workers"](1) == 3 and defaults["default_workers"](64) == 12
    assert defaults["worker_class"] == "gthread" and defaults["threads"] == 4
    assert defaults["max_requests"] > 0 and defaults["max_requests_jitter"] > 0
    assert "%({x-request-id}i)s" in defaults["access_log_format"]
    assert defaults["forwarded_allow_ips"] == "127.0.0.1,::1"

    platform = gunicorn_settings(monkeypatch, PORT="5000", WEB_CONCURRENCY="3")
    assert platform["bind"] == "0.0.0.0:5000" and platform["workers"] == 3
    systemd = gunicorn_settings(monkeypatch, PORT="5000", GUNICORN_BIND="127.0.0.1:8001")
    assert systemd["bind"] == "127.0.0.1:8001"


def test_gunicorn_empties_the_prometheus_directory_when_it_starts(monkeypatch, tmp_path):
    left_over = tmp_path / "prometheus" / "counter_123.db"
    left_over.parent.mkdir()
    left_over.write_text("an earlier run's counts")
    settings = gunicorn_settings(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(left_over.parent))
    settings["on_starting"](server=None)
    assert left_over.parent.is_dir() and list(left_over.parent.iterdir()) == []


# --- ProxyFix ----------------------------------------------------------------------------------


def _probe_app(hops: int):
    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = "sqlite://"
        PROXY_FIX_HOPS = hops

    app = create_app(Config)
    app.add_url_rule("/_probe", "probe", lambda: f"{request.scheme} {request.remote_addr}")
    return app


@pytest.mark.parametrize(("hops", "expected"), [(1, "https 203.0.113.7"), (0, "http 127.0.0.1")])
def test_proxy_fix_believes_forwarded_headers_only_when_hops_are_set(hops, expected):
    app = _probe_app(hops)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert app.test_client().get("/_probe", headers=headers).text == expected


# --- systemd -----------------------------------------------------------------------------------


def unit_values(path: Path, key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]


def test_systemd_units_run_the_procfile_entry_points():
    web = unit_values(SYSTEMD / "daystar-web.service", "ExecStart")
    assert web == ["/srv/daystar/.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app"]
    worker = unit_values(SYSTEMD / "daystar-worker@.service", "ExecStart")
    assert worker == ["/srv/daystar/.venv/bin/python worker.py $WORKER_OPTIONS $QUEUES"]
    assert '"QUEUES=%I"' in unit_values(SYSTEMD / "daystar-worker@.service", "Environment")
    no_fork = SYSTEMD / "daystar-worker@high.service.d" / "no-fork.conf"
    assert unit_values(no_fork, "Environment") == ["WORKER_OPTIONS=--no-fork"]
    cron = SYSTEMD / "daystar-cron.service"
    assert unit_values(cron, "ExecStart") == ["/srv/daystar/.venv/bin/python worker.py --cron"]
    for unit in ("daystar-web.service", "daystar-worker@.service", "daystar-cron.service"):
        assert unit_values(SYSTEMD / unit, "EnvironmentFile") == ["/etc/daystar/daystar.env"]
    example = (SYSTEMD / "daystar.env.example").read_text()
    for name in ("DAYSTAR_ENV=production", "SECRET_KEY=", "DATABASE_URL=", "PROXY_FIX_HOPS=1"):
        assert f"\n{name}" in example


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    for source in [*SYSTEMD.glob("*.service"), SYSTEMD / "daystar.env.example"]:
        text_ = source.read_text().replace("/etc/daystar/daystar.env", str(tmp_path / "env"))
        text_ = text_.replace("/srv/daystar/.venv", str(BIN.parent))
        text_ = text_.replace("/srv/daystar", str(ROOT))
        name = "env" if source.suffix == ".example" else source.name
        (tmp_path / name).write_text(text_)
    # A template verifies as one of its instances.
    (tmp_path / "daystar-worker@.service").rename(tmp_path / "daystar-worker@high.service")
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    answer = run(["systemd-analyze", "verify", "--man=no", *units], dict(os.environ))
    problems = [line for line in answer.stderr.splitlines() if str(tmp_path) in line]
    assert answer.returncode == 0 and not problems, answer.stderr


# --- nginx -------------------------------------------------------------------------------------


def test_nginx_site_passes_what_the_app_needs():
    site = NGINX_SITE.read_text()
    for line in (
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-ID $daystar_request_id;",
        "proxy_set_header Host $host;",
        "location /callbacks/ {",
        "location /api/ {",
        "location /static/ {",
        "server 127.0.0.1:8000;",
    ):
        assert line in site, line
    assert "client_max_body_size 1m;" in site
    assert re.search(r"ssl_certificate\s", site) and "return 301 https://" in site


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.example.co.ke")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_site_passes_nginx_t(tmp_path):
    cert, key = _self_signed(tmp_path)
    site = NGINX_SITE.read_text()
    site = site.replace("/etc/letsencrypt/live/portal.example.co.ke/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/portal.example.co.ke/privkey.pem", str(key))
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log {tmp_path}/access.log;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    nginx = shutil.which("nginx")
    answer = run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], {})
    assert answer.returncode == 0, answer.stderr
