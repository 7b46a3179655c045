"""`flask --app wsgi doctor`: a healthy set-up passes (exit 0); each broken piece is a FAIL line
with its fix, and exit 1; --json parses."""

import json
import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from rq import Worker
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db as _db
from app.jobs import QUEUES, get_queue
from app.services import doctor, settings, webhooks
from app.services.actor import Actor
from app.services.events import EVENT_TYPES
from app.services.mpesa.config import SECRET_FIELDS as MPESA_SECRETS
from config import TestingConfig
from tests.fixtures.mpesa import SECRET
from worker import CRON_LOCK

PUBLIC_URL = "https://portal.example.co.ke"


# --- helpers ---------------------------------------------------------------------------------


def run_doctor(app, *args):
    return app.test_cli_runner().invoke(args=["doctor", *args])


def checks_of(result) -> dict[str, dict]:
    """The --json report's checks, by name."""
    report = json.loads(result.stdout)
    return {check["name"]: check for check in report["checks"]}


def text_lines(result, name: str) -> tuple[str, str]:
    """The text report's line for the check `name`, and the line after it (its fix, if any)."""
    lines = result.stdout.splitlines()
    for number, line in enumerate(lines):
        words = line.split()
        if len(words) > 1 and words[1] == name:
            following = lines[number + 1] if number + 1 < len(lines) else ""
            return line, following
    raise AssertionError(f"no line for {name} in:\n{result.stdout}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def other_app(database_url, engine_options, redis_url, **settings_):
    """Another app (as another process with other settings would be), in its own context."""

    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options
        REDIS_URL = redis_url
        MPESA_OVERRIDES: dict = {}
        NOTIFY_OVERRIDES: dict = {}

    for name, value in settings_.items():
        setattr(Config, name, value)
    app = create_app(Config)
    with app.app_context():
        try:
            yield app
        finally:
            _db.session.remove()
            _db.engine.dispose()


@pytest.fixture
def at_head(db):
    """The test database (built by create_all, i.e. the head schema) stamped at the head."""
    with db.engine.begin() as conn:
        MigrationContext.configure(conn).stamp(doctor._script_directory(), "heads")
    yield
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def workers_alive(redis_conn):
    """An RQ worker on every queue, registered as a running one would be (not run), and the cron
    scheduler's lock held."""
    worker = Worker([get_queue(name) for name in QUEUES], connection=redis_conn, name="doctor-test")
    worker.register_birth()
    redis_conn.set(CRON_LOCK, "cron-test", ex=150)
    return worker


def mpesa_overrides(sandbox, **changes) -> dict:
    creds = sandbox.credentials
    values = {
        "environment": "simulator",
        "base_url": sandbox.base_url,
        "consumer_key": creds["consumer_key"],
        "consumer_secret": creds["consumer_secret"],
        "shortcode": creds["shortcode"],
        "passkey": creds["passkey"],
        "initiator_name": creds["initiator_name"],
        "initiator_password": creds["initiator_password"],
        "certificate": sandbox.cert.decode(),
        "callback_secret": SECRET,
        "public_base_url": PUBLIC_URL,
    }
    return {**values, **changes}


@pytest.fixture
def overrides(app):
    """Set MPESA_OVERRIDES / NOTIFY_OVERRIDES as environment variables would; restored after."""
    saved = app.config["MPESA_OVERRIDES"], app.config["NOTIFY_OVERRIDES"]

    def _set(mpesa=None, notify=None):
        app.config["MPESA_OVERRIDES"] = mpesa or {}
        app.config["NOTIFY_OVERRIDES"] = notify or {}

    yield _set
    app.config["MPESA_OVERRIDES"], app.config["NOTIFY_OVERRIDES"] = saved


# --- a healthy set-up ------------------------------------------------------------------------


def test_a_healthy_setup_passes(
    app, at_head, workers_alive, daraja_sandbox, notify_sandbox, overrides
):
    creds = notify_sandbox.credentials
    overrides(
        mpesa=mpesa_overrides(daraja_sandbox),
        notify={
            "africastalking.username": creds["africastalking"]["username"],
            "africastalking.api_key": creds["africastalking"]["api_key"],
            "africastalking.base_url": notify_sandbox.base_url,
            "sendgrid.api_key": creds["sendgrid"]["api_key"],
            "sendgrid.from_address": "no-reply@daystar.co.ke",
            "sendgrid.base_url": notify_sandbox.base_url,
        },
    )
    settings.save("mpesa", {"callback_secret": "s" * 20}, MPESA_SECRETS, Actor.system("test"))

    result = run_doctor(app)
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    line, _ = text_lines(result, "migrations")
    assert line.startswith("OK") and "head revision" in line

    result = run_doctor(app, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["counts"]["FAIL"] == 0
    checks = checks_of(result)
    for name in (
        "config.encryption_key",
        "database",
        "migrations",
        "stored_secrets",
        "redis",
        "workers.high",
        "workers.default",
        "workers.low",
        "cron",
        "mpesa.stk_push",
        "mpesa.b2c",
        "mpesa.paybill",
        "mpesa.certificate",
        "mpesa.token",
        "notify.africastalking",
        "notify.sendgrid",
        "notify.sms",
        "notify.email",
    ):
        assert checks[name]["status"] == "OK", checks[name]
    assert "doctor-test" in checks["workers.high"]["message"]
    assert "cron-test" in checks["cron"]["message"]
    assert "1 stored secret(s) decrypt" in checks["stored_secrets"]["message"]
    assert "credentials not verified" in checks["notify.sendgrid"]["message"]
    assert checks["notify.twilio"]["message"].startswith("not configured")
    # The testing configuration is not for a server: a warning, not a failure.
    assert checks["config.environment"]["status"] == "WARN"
    assert daraja_sandbox.tokens_issued() == 1


# --- broken pieces ---------------------------------------------------------------------------


def test_redis_down_fails_with_the_fix_and_skips_what_needs_it(app, database_url, engine_options):
    url = f"redis://:hunter2secret@127.0.0.1:{closed_port()}/0"
    with other_app(database_url, engine_options, url) as broken:
        result = run_doctor(broken)
        assert result.exit_code == 1
        line, fix = text_lines(result, "redis")
        assert line.startswith("FAIL") and "does not answer" in line
        assert "hunter2secret" not in result.output and ":***@" in line
        assert "fix:" in fix and "REDIS_URL" in fix
        checks = checks_of(run_doctor(broken, "--json"))
    for name in ("workers.high", "workers.default", "workers.low", "cron"):
        assert checks[name]["status"] == "WARN"
        assert checks[name]["message"] == "not checked: Redis does not answer"


def test_no_worker_on_a_queue_and_no_cron_scheduler_fail(app, at_head, redis_conn):
    Worker([get_queue("high")], connection=redis_conn, name="high-only").register_birth()
    get_queue("low").enqueue("app.jobs.events.sweep_outbox")

    result = run_doctor(app)
    assert result.exit_code == 1
    assert text_lines(result, "workers.high")[0].startswith("OK")
    for queue in ("default", "low"):
        line, fix = text_lines(result, f"workers.{queue}")
        assert line.startswith("FAIL") and f"no worker listens on queue {queue}" in line
        assert "python worker.py default low" in fix
    assert "(1 job(s) waiting)" in text_lines(result, "workers.low")[0]
    line, fix = text_lines(result, "cron")
    assert line.startswith("FAIL") and "python worker.py --cron" in fix


@pytest.fixture
def scratch_database(tmp_path):
    """A URL and engine options for an empty database of its own."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path}/scratch.db", {}
        return
    schema = f"doctor_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_migrations_behind_fail_with_the_upgrade_command(app, scratch_database):
    url, options = scratch_database
    with other_app(url, options, app.config["REDIS_URL"]) as behind:
        result = run_doctor(behind)
        line, fix = text_lines(result, "migrations")
        assert line.startswith("FAIL") and "the database is empty" in line

        script = doctor._script_directory()
        (base,) = script.get_bases()
        assert base not in script.get_heads()
        with _db.engine.begin() as conn:
            MigrationContext.configure(conn).stamp(script, base)
        result = run_doctor(behind)

    assert result.exit_code == 1
    line, fix = text_lines(result, "migrations")
    assert line.startswith("FAIL")
    assert f"the database is at {base}" in line and "migration(s) not applied" in line
    assert "fix:" in fix and "flask --app wsgi db upgrade" in fix

    with other_app(url, options, app.config["REDIS_URL"]) as ahead:
        with _db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0001'"))
        line, fix = text_lines(run_doctor(ahead), "migrations")
    assert line.startswith("FAIL") and "f00dfeed0001, which migrations/ does not know" in line
    assert "Deploy the release that matches the database" in fix


def test_a_database_made_without_migrations_fails_with_stamp_advice(app):
    line, fix = text_lines(run_doctor(app), "migrations")
    assert line.startswith("FAIL") and "has tables but no migration revision" in line
    assert "flask --app wsgi db stamp head" in fix


def test_bad_mpesa_credentials_fail_against_the_sandbox(
    app, at_head, workers_alive, daraja_sandbox, overrides
):
    overrides(mpesa=mpesa_overrides(daraja_sandbox, consumer_secret="not-the-secret"))

    result = run_doctor(app)

    assert result.exit_code == 1
    line, fix = text_lines(result, "mpesa.token")
    assert line.startswith("FAIL") and "refused the consumer key and secret" in line
    assert "fix:" in fix and "DAYSTAR_MPESA_CONSUMER_SECRET" in fix
    assert "not-the-secret" not in result.output
    assert daraja_sandbox.tokens_issued() == 0
    # The rest of M-Pesa is fine: only the credentials fail.
    assert text_lines(result, "mpesa.certificate")[0].startswith("OK")


def test_incomplete_mpesa_settings_warn_per_use(app, at_head, workers_alive, overrides):
    overrides(mpesa={"environment": "sandbox", "consumer_key": "k", "consumer_secret": "s"})
    checks = checks_of(run_doctor(app, "--json"))
    assert checks["mpesa.stk_push"]["status"] == "WARN"
    assert "shortcode, passkey, public base URL missing" in checks["mpesa.stk_push"]["message"]
    assert "initiator name" in checks["mpesa.b2c"]["message"]


def test_missing_encryption_key_fails(app, database_url, engine_options):
    with other_app(
        database_url, engine_options, app.config["REDIS_URL"], DAYSTAR_ENCRYPTION_KEY=None
    ) as broken:
        result = run_doctor(broken)
    assert result.exit_code == 1
    line, fix = text_lines(result, "config.encryption_key")
    assert line.startswith("FAIL") and "DAYSTAR_ENCRYPTION_KEY is not set" in line
    assert "fix:" in fix and "Fernet.generate_key()" in fix


def test_secrets_stored_with_another_key_fail(app, database_url, engine_options):
    actor = Actor.system("test")
    settings.save("mpesa", {"consumer_secret": "stored-before-rotation"}, MPESA_SECRETS, actor)
    endpoint, _ = webhooks.register_endpoint(
        "https://receiver.example.com/hooks", [EVENT_TYPES[0]], actor
    )
    new_key = Fernet.generate_key().decode()
    with other_app(
        database_url, engine_options, app.config["REDIS_URL"], DAYSTAR_ENCRYPTION_KEY=new_key
    ) as rotated:
        result = run_doctor(rotated)
        checks = checks_of(run_doctor(rotated, "--json"))
    assert result.exit_code == 1
    line, fix = text_lines(result, "stored_secrets")
    assert line.startswith("FAIL") and "2 of 2 stored secret(s) cannot be decrypted" in line
    assert "setting mpesa.consumer_secret" in line and f"webhook endpoint {endpoint.id}" in line
    assert "fix:" in fix and "back to the key they were saved with" in fix
    assert checks["config.encryption_key"]["status"] == "OK"  # a valid key, just not the one
    assert checks["mpesa.settings"]["status"] == "WARN"
    assert checks["mpesa.settings"]["message"].startswith("not checked")
    assert "mpesa.consumer_secret cannot be decrypted" in checks["mpesa.settings"]["message"]


def test_a_provider_partly_configured_warns_and_unusable_settings_fail(app, at_head, overrides):
    overrides(
        notify={
            "twilio.account_sid": "AC123",
            "mailgun.api_key": "key-abc",
            "mailgun.domain": "mg.daystar.co.ke",
            "mailgun.from_address": "no-reply@daystar.co.ke",
            "mailgun.region": "asia",
        }
    )
    result = run_doctor(app, "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["notify.twilio"]["status"] == "WARN"
    assert "auth_token, from_number missing" in checks["notify.twilio"]["message"]
    assert "DAYSTAR_TWILIO_AUTH_TOKEN, DAYSTAR_TWILIO_FROM" in checks["notify.twilio"]["fix"]
    assert checks["notify.mailgun"]["status"] == "FAIL"
    assert "region must be us or eu" in checks["notify.mailgun"]["message"]
    assert checks["notify.sms"]["status"] == "WARN"  # no usable SMS provider


# --- the configuration checks, one by one ----------------------------------------------------

PRODUCTION = {
    "ENV_NAME": "production",
    "SECRET_KEY": "x" * 48,
    "DAYSTAR_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://daystar:pw@db:5432/daystar",
    "PROXY_FIX_HOPS": 1,
    "API_REQUIRE_HTTPS": True,
}


def test_production_configuration_checks():
    assert doctor.check_environment(PRODUCTION).status == "OK"
    assert doctor.check_secret_key(PRODUCTION).status == "OK"
    assert doctor.check_secret_key({**PRODUCTION, "SECRET_KEY": "short"}).status == "WARN"
    assert doctor.check_secret_key({**PRODUCTION, "SECRET_KEY": None}).status == "FAIL"
    bad_key = doctor.check_encryption_key({**PRODUCTION, "DAYSTAR_ENCRYPTION_KEY": "not-a-key"})
    assert bad_key.status == "FAIL" and "not a Fernet key" in bad_key.message

    database = doctor.check_database_url(PRODUCTION)
    assert database.status == "OK" and ":pw@" not in database.message and "***" in database.message
    sqlite = doctor.check_database_url({**PRODUCTION, "SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"})
    assert sqlite.status == "WARN" and "postgresql+psycopg://" in sqlite.fix
    missing = doctor.check_database_url({**PRODUCTION, "SQLALCHEMY_DATABASE_URI": None})
    assert missing.status == "FAIL"

    assert doctor.check_proxy_fix(PRODUCTION).status == "OK"
    no_proxy = doctor.check_proxy_fix({**PRODUCTION, "PROXY_FIX_HOPS": 0})
    assert no_proxy.status == "WARN" and "PROXY_FIX_HOPS=1" in no_proxy.fix
    development = {**PRODUCTION, "PROXY_FIX_HOPS": 0, "ENV_NAME": "development"}
    assert doctor.check_proxy_fix(development).status == "OK"
    assert doctor.check_api_https({**PRODUCTION, "API_REQUIRE_HTTPS": False}).status == "WARN"


def test_bare_postgresql_url_names_the_missing_driver():
    if doctor.importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    result = doctor.check_database_url(
        {**PRODUCTION, "SQLALCHEMY_DATABASE_URI": "postgresql://h/d"}
    )
    assert result.status == "FAIL" and "postgresql+psycopg://" in result.fix


def test_public_base_url_must_be_https_in_production(app):
    from app.services.mpesa.config import MpesaSettings

    plain = doctor.check_public_base_url(PRODUCTION, MpesaSettings(public_base_url="http://x.ke"))
    assert plain.status == "FAIL" and "DAYSTAR_PUBLIC_BASE_URL" in plain.fix
    unset = doctor.check_public_base_url(PRODUCTION, MpesaSettings())
    assert unset.status == "WARN"
    https = doctor.check_public_base_url(PRODUCTION, MpesaSettings(public_base_url=PUBLIC_URL))
    assert https.status == "OK"
    development = {**PRODUCTION, "ENV_NAME": "development"}
    assert doctor.check_public_base_url(development, MpesaSettings()).status == "OK"


def test_the_command_is_registered(app):
    assert "doctor" in app.cli.list_commands(None)
    assert Path(doctor._script_directory().dir).name == "migrations"
