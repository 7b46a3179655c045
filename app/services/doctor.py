"""What `flask --app wsgi doctor` checks: the configuration, the database and its migrations, the
stored secrets, Redis, the RQ workers and the cron scheduler, M-Pesa and the notification
providers. Each check is a small function answering with a CheckResult (OK, WARN or FAIL, what it
found, how to fix it). Checks only read: nothing here changes a row or a setting."""

import contextlib
import importlib.util
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from cryptography.fernet import Fernet
from flask import current_app
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.extensions import db
from app.integrations.daraja import DarajaAuthError, DarajaError
from app.integrations.daraja_security import certificate_summary
from app.jobs import QUEUES, get_queue, redis_client
from app.models import Setting, WebhookEndpoint
from app.redaction import redact_text
from app.services import crypto
from app.services.errors import ServiceError
from app.services.mpesa import config as mpesa_config
from app.services.mpesa import monitor
from app.services.notifications import config as notify_config
from app.services.notifications import providers
from config import NOTIFY_PROVIDER_VARIABLES

FLASK = "flask --app wsgi"
CERTIFICATE_WARN_DAYS = 30
# How each queue's worker is started (worker.py; Procfile and deploy/systemd/ do the same).
WORKER_COMMANDS = {
    "high": "python worker.py --no-fork high",
    "default": "python worker.py default low",
    "low": "python worker.py default low",
}


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "status": str(self.status),
            "message": self.message,
            "fix": self.fix,
        }


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.OK, message)


def warn(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARN, message, fix)


def fail(name: str, message: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, message, fix)


def not_checked(name: str, reason: str) -> CheckResult:
    return warn(name, f"not checked: {reason}", "Fix that first, then run doctor again.")


def _first_line(exc: BaseException) -> str:
    """An exception's own words, without SQLAlchemy's statement and background link, and with
    anything that looks like a secret redacted."""
    original = getattr(exc, "orig", None) or exc
    text_ = str(original).strip().splitlines()
    return redact_text(text_[0]) if text_ else type(original).__name__


def _is_production(config: Mapping) -> bool:
    return config.get("ENV_NAME") == "production"


# --- configuration (config.py) -------------------------------------------------------------------

SESSION_KEY_ADVICE = (
    "Set SECRET_KEY to a long random value: "
    "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
)
FERNET_KEY_ADVICE = (
    "Set DAYSTAR_ENCRYPTION_KEY to a Fernet key: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
    "(if secrets were stored with an earlier key, set that key instead: a new one cannot read them)"
)
POSTGRES_URL = "DATABASE_URL=postgresql+psycopg://USER:PASSWORD@HOST:5432/daystar"


def check_environment(config: Mapping) -> CheckResult:
    """Which configuration class runs; anything but production is not for a server."""
    name = config.get("ENV_NAME")
    if name == "production":
        return ok("config.environment", "DAYSTAR_ENV=production")
    return warn(
        "config.environment",
        f"DAYSTAR_ENV={name}: the {name} configuration (cookies not Secure, plain-HTTP API "
        "allowed)",
        "On a server set DAYSTAR_ENV=production.",
    )


def check_secret_key(config: Mapping) -> CheckResult:
    """SECRET_KEY is set, and long enough in production."""
    value = config.get("SECRET_KEY") or ""
    if not value:
        return fail(
            "config.secret_key",
            "SECRET_KEY is not set: sessions and CSRF tokens cannot be signed",
            SESSION_KEY_ADVICE,
        )
    if _is_production(config) and len(value) < 32:
        return warn(
            "config.secret_key",
            f"SECRET_KEY is only {len(value)} characters: too short to resist guessing",
            SESSION_KEY_ADVICE + " (everyone is signed out once).",
        )
    return ok("config.secret_key", "SECRET_KEY is set")


def check_encryption_key(config: Mapping) -> CheckResult:
    """DAYSTAR_ENCRYPTION_KEY is set and is a valid Fernet key."""
    value = config.get("DAYSTAR_ENCRYPTION_KEY")
    if not value:
        return fail(
            "config.encryption_key",
            "DAYSTAR_ENCRYPTION_KEY is not set: stored secrets (M-Pesa and provider credentials, "
            "webhook secrets) can be neither saved nor read",
            FERNET_KEY_ADVICE,
        )
    try:
        Fernet(value)
    except (ValueError, TypeError):
        return fail(
            "config.encryption_key",
            "DAYSTAR_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes)",
            FERNET_KEY_ADVICE,
        )
    return ok("config.encryption_key", "DAYSTAR_ENCRYPTION_KEY is a valid Fernet key")


def shown_database_url(url: str) -> str:
    """The database URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def check_database_url(config: Mapping) -> CheckResult:
    """DATABASE_URL is set, names an installed driver, and is PostgreSQL in production."""
    url = config.get("SQLALCHEMY_DATABASE_URI") or ""
    if not url:
        return fail("config.database_url", "DATABASE_URL is not set", f"Set {POSTGRES_URL}.")
    try:
        parsed = make_url(url)
    except ArgumentError:
        return fail(
            "config.database_url", "DATABASE_URL is not a database URL", f"Set {POSTGRES_URL}."
        )
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    bare_postgresql = parsed.drivername == "postgresql"
    if bare_postgresql and importlib.util.find_spec("psycopg2") is None:
        return fail(
            "config.database_url",
            f"{shown}: postgresql:// means the psycopg2 driver, which is not installed",
            "Write the URL as postgresql+psycopg://... (psycopg 3 is installed).",
        )
    if backend == "sqlite" and _is_production(config):
        return warn(
            "config.database_url",
            f"{shown}: SQLite in production (one writer at a time, no point-in-time recovery, "
            "one machine only)",
            f"Use PostgreSQL: {POSTGRES_URL}, then {FLASK} db upgrade.",
        )
    return ok("config.database_url", shown)


def check_proxy_fix(config: Mapping) -> CheckResult:
    """PROXY_FIX_HOPS fits a deployment behind a TLS proxy."""
    hops = int(config.get("PROXY_FIX_HOPS") or 0)
    if hops < 0:
        return fail(
            "config.proxy_fix_hops",
            f"PROXY_FIX_HOPS={hops} is negative",
            "Set PROXY_FIX_HOPS to the number of reverse proxies in front of gunicorn (nginx: 1).",
        )
    if hops > 0:
        return ok(
            "config.proxy_fix_hops",
            f"PROXY_FIX_HOPS={hops}: X-Forwarded-For and X-Forwarded-Proto from {hops} "
            "proxy(ies) are believed (werkzeug ProxyFix)",
        )
    if _is_production(config):
        return warn(
            "config.proxy_fix_hops",
            "PROXY_FIX_HOPS=0: X-Forwarded-For is ignored, so behind nginx every client seems "
            "to be the proxy (in the audit log, API key and callback allow-lists, sign-in "
            "lockouts), and the scheme is https only where gunicorn trusts the proxy itself",
            "Behind one reverse proxy set PROXY_FIX_HOPS=1 (2 with a load balancer in front of "
            "nginx). Leave 0 only if gunicorn faces the clients itself, which it should not.",
        )
    return ok("config.proxy_fix_hops", "PROXY_FIX_HOPS=0: forwarded headers are ignored")


def check_api_https(config: Mapping) -> CheckResult:
    """The accounting API refuses plain HTTP in production."""
    if config.get("API_REQUIRE_HTTPS"):
        return ok("config.api_require_https", "plain-HTTP API requests are refused (403)")
    if _is_production(config):
        return warn(
            "config.api_require_https",
            "API_REQUIRE_HTTPS is off in production: API keys may travel unencrypted",
            "Remove API_REQUIRE_HTTPS=false (production turns it on), terminate TLS in nginx "
            "and set PROXY_FIX_HOPS.",
        )
    return ok(
        "config.api_require_https", "off (plain-HTTP API requests accepted outside production)"
    )


def check_public_base_url(config: Mapping, mpesa: mpesa_config.MpesaSettings) -> CheckResult:
    """The address Safaricom and the providers post callbacks to: set, and https in production."""
    fix = (
        "Set DAYSTAR_PUBLIC_BASE_URL=https://<the portal's public name> (or the public base URL "
        "on Integrations > M-Pesa > Settings)."
    )
    url = mpesa.public_base_url.strip()
    if not url:
        if _is_production(config):
            return warn(
                "config.public_base_url",
                "DAYSTAR_PUBLIC_BASE_URL is not set: Safaricom and the providers have no address "
                "to post callbacks to",
                fix,
            )
        return ok("config.public_base_url", "not set (callbacks cannot reach this machine)")
    if _is_production(config) and urlsplit(url).scheme != "https":
        return fail(
            "config.public_base_url",
            f"DAYSTAR_PUBLIC_BASE_URL={url} is not https: Safaricom calls only https callback URLs",
            fix,
        )
    return ok("config.public_base_url", url)


# --- database --------------------------------------------------------------------------------


def check_database() -> CheckResult:
    """The database answers a query."""
    shown = shown_database_url(current_app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    try:
        db.session.execute(text("SELECT 1"))
        dialect = db.engine.dialect
    except Exception as exc:  # noqa: BLE001 (a missing driver is as fatal as a refused login)
        return fail(
            "database",
            f"{shown} does not answer: {_first_line(exc)}",
            "Check DATABASE_URL, that PostgreSQL runs and is reachable from this machine, and "
            "that it accepts this user and password (pg_hba.conf).",
        )
    if dialect.name == "sqlite":
        version = sqlite3.sqlite_version
    else:
        version = ".".join(str(part) for part in dialect.server_version_info or ())
    return ok("database", f"{shown} answers ({dialect.name} {version})")


def _script_directory() -> ScriptDirectory:
    """migrations/ as Flask-Migrate configures it (a relative directory is the project's)."""
    migrate = current_app.extensions["migrate"]
    directory = Path(migrate.directory)
    if not directory.is_absolute():
        directory = Path(current_app.root_path).parent / directory
    return ScriptDirectory.from_config(migrate.migrate.get_config(str(directory)))


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Silence a library's INFO chatter (Alembic's "Context impl ...") around a check."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def check_migrations() -> CheckResult:
    """The database's Alembic revision is the migrations' single head."""
    with _quiet("alembic"):
        script = _script_directory()
        heads = set(script.get_heads())
    with _quiet("alembic"), db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        has_tables = bool(inspect(connection).get_table_names())
    upgrade = f"Run {FLASK} db upgrade (back up the database first)."
    if len(heads) > 1:
        return fail(
            "migrations",
            f"migrations/ has {len(heads)} heads ({', '.join(sorted(heads))}): two migrations "
            "were added without a merge",
            f"Merge them ({FLASK} db merge heads -m merge), then {FLASK} db upgrade.",
        )
    if current == heads:
        return ok("migrations", f"the database is at the head revision {', '.join(heads)}")
    if not current:
        if not has_tables:
            return fail("migrations", "the database is empty: no migration applied", upgrade)
        return fail(
            "migrations",
            "the database has tables but no migration revision (made without migrations?)",
            f"If its schema is the current one record that with {FLASK} db stamp head; "
            f"otherwise build a new database with {FLASK} db upgrade and move the data.",
        )
    try:
        pending = list(script.iterate_revisions(tuple(heads), tuple(current)))
    except (CommandError, RevisionError):  # an id that migrations/ does not have
        return fail(
            "migrations",
            f"the database is at {', '.join(sorted(current))}, which migrations/ does not know: "
            "a newer release migrated it",
            "Deploy the release that matches the database, or downgrade the database with that "
            "release's migrations.",
        )
    return fail(
        "migrations",
        f"the database is at {', '.join(sorted(current))}, the code at {', '.join(heads)}: "
        f"{len(pending)} migration(s) not applied",
        upgrade,
    )


def _unreadable_secrets() -> tuple[int, list[str]]:
    """How many stored secrets are in use, and which of them cannot be decrypted."""
    count, unreadable = 0, []

    def tries(label: str, token: str) -> None:
        nonlocal count
        count += 1
        try:
            crypto.decrypt(token)
        except (ValueError, TypeError):  # TypeError: no key at all
            unreadable.append(label)

    for row in db.session.scalars(select(Setting).where(Setting.secret.is_(True))):
        tries(f"setting {row.key}", row.value)
    now = datetime.now(UTC)
    for endpoint in db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
        tries(f"webhook endpoint {endpoint.id}", endpoint.secret_encrypted)
        until = endpoint.previous_secret_until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        if endpoint.previous_secret_encrypted and until and until > now:
            tries(
                f"webhook endpoint {endpoint.id} (previous secret)",
                endpoint.previous_secret_encrypted,
            )
    return count, unreadable


def _secrets_found() -> tuple[int, list[str]] | None:
    """_unreadable_secrets(), or None when it raised (check_stored_secrets then asks again, and
    reports the error)."""
    try:
        return _unreadable_secrets()
    except Exception:  # noqa: BLE001
        return None
    finally:
        _rollback()


def check_stored_secrets(found: tuple[int, list[str]] | None = None) -> CheckResult:
    """Every stored secret decrypts with the current DAYSTAR_ENCRYPTION_KEY; `found`: what
    _unreadable_secrets() answered already, if it was asked."""
    count, unreadable = found if found is not None else _unreadable_secrets()
    if not count:
        return ok("stored_secrets", "no secrets stored in the database")
    if unreadable:
        return fail(
            "stored_secrets",
            f"{len(unreadable)} of {count} stored secret(s) cannot be decrypted with "
            f"DAYSTAR_ENCRYPTION_KEY (was the key changed?): {', '.join(unreadable)}",
            "Set DAYSTAR_ENCRYPTION_KEY back to the key they were saved with, in every process. "
            "If that key is lost, so are these values (they read as not set meanwhile): enter "
            "them again on their settings pages, which replaces them; delete and register again "
            "those webhook endpoints (their receivers get new secrets).",
        )
    return ok("stored_secrets", f"{count} stored secret(s) decrypt with DAYSTAR_ENCRYPTION_KEY")


# --- Redis, workers, cron ----------------------------------------------------------------------


def shown_redis_url(url: str) -> str:
    """The Redis URL with its password hidden."""
    parts = urlsplit(url)
    if parts.password:
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{user}:***@{host}{port}")
    return urlunsplit(parts)


def check_redis() -> CheckResult:
    """Redis answers, and will not evict job keys when full."""
    shown = shown_redis_url(current_app.config["REDIS_URL"])
    try:
        info = redis_client().info()
    except RedisError as exc:
        return fail(
            "redis",
            f"{shown} does not answer: {_first_line(exc)}",
            "Start Redis, or correct REDIS_URL (redis://[:PASSWORD@]HOST:6379/N). Until it "
            "answers no job runs: work is delayed, not lost (the sweeps re-enqueue it from the "
            "database).",
        )
    policy = info.get("maxmemory_policy", "noeviction")
    if int(info.get("maxmemory") or 0) > 0 and policy != "noeviction":
        return warn(
            "redis",
            f"{shown}: maxmemory-policy is {policy}, so a full Redis evicts queued jobs and locks",
            "Set maxmemory-policy noeviction in redis.conf (and leave room in maxmemory).",
        )
    aof = "on" if str(info.get("aof_enabled", "0")) == "1" else "off"
    return ok("redis", f"{shown} answers (Redis {info.get('redis_version', '?')}, AOF {aof})")


def check_queue_workers(queue_name: str) -> CheckResult:
    """At least one live RQ worker (its heartbeat key not expired) listens on the queue."""
    queue = get_queue(queue_name)
    workers = Worker.all(queue=queue)
    waiting = queue.count
    if not workers:
        return fail(
            f"workers.{queue_name}",
            f"no worker listens on queue {queue_name} ({waiting} job(s) waiting)",
            f"Start one: {WORKER_COMMANDS[queue_name]} (systemd: deploy/systemd/"
            "daystar-worker@.service; Procfile: its worker process).",
        )
    return ok(
        f"workers.{queue_name}",
        f"{len(workers)} worker(s) listening ({', '.join(sorted(w.name for w in workers))}); "
        f"{waiting} job(s) waiting",
    )


def check_cron_scheduler() -> CheckResult:
    """A cron scheduler holds its lock (renewed every minute; gone 150 s after it stops)."""
    from worker import CRON_LOCK  # the lock is worker.py's; imported late, as it imports the app

    holder = redis_client().get(CRON_LOCK)
    if holder is None:
        return fail(
            "cron",
            f"no cron scheduler holds {CRON_LOCK}: periodic jobs (outbox and callback sweeps, "
            "overdue loans, pruning) do not run",
            "Start exactly one: TZ=Africa/Nairobi python worker.py --cron (systemd: "
            "daystar-cron.service; Procfile: the cron process).",
        )
    return ok("cron", f"the cron scheduler {holder.decode(errors='replace')} is alive")


# --- M-Pesa ------------------------------------------------------------------------------------

MPESA_FIX = (
    "Set them on Integrations > M-Pesa > Settings or with the DAYSTAR_MPESA_* environment "
    "variables (see the README)."
)


def mpesa_is_set_up(mpesa: mpesa_config.MpesaSettings) -> bool:
    """Whether anyone started configuring M-Pesa (a credential or a shortcode is set)."""
    return bool(mpesa.consumer_key or mpesa.consumer_secret or mpesa.shortcode)


def check_mpesa_environment(config: Mapping, mpesa: mpesa_config.MpesaSettings) -> CheckResult:
    """M-Pesa is configured, and real in production."""
    if not mpesa_is_set_up(mpesa):
        return warn("mpesa.settings", "M-Pesa is not configured", MPESA_FIX)
    if _is_production(config) and mpesa.environment != "production":
        return warn(
            "mpesa.settings",
            f"M-Pesa environment is {mpesa.environment} in production: no real money moves",
            "Set DAYSTAR_MPESA_ENV=production with the production app's credentials.",
        )
    return ok("mpesa.settings", f"environment {mpesa.environment}, {mpesa.resolved_base_url}")


def check_mpesa_use(use: str, missing: list[str]) -> CheckResult:
    """One use of M-Pesa (STK Push, B2C, Paybill) has every setting it needs."""
    name = f"mpesa.{use.split(' (')[0].lower().replace(' ', '_')}"
    if missing:
        return warn(name, f"{use} cannot work yet: {', '.join(missing)} missing", MPESA_FIX)
    return ok(name, f"{use}: settings complete")


def check_mpesa_certificate(mpesa: mpesa_config.MpesaSettings) -> CheckResult:
    """The certificate (for the B2C SecurityCredential) reads, parses and is in date."""
    fix = (
        "Download Safaricom's certificate for this environment from the Daraja portal and upload "
        "it on Integrations > M-Pesa > Settings (or point DAYSTAR_MPESA_CERTIFICATE at it)."
    )
    data, problem = monitor.certificate_text(mpesa)
    if problem:
        return fail("mpesa.certificate", problem, fix)
    try:
        summary = certificate_summary(data)
    except ValueError as exc:
        return fail("mpesa.certificate", f"the certificate cannot be read: {exc}", fix)
    expires = datetime.fromisoformat(summary["not_valid_after"])
    now = datetime.now(UTC)
    if expires <= now:
        return fail("mpesa.certificate", f"the certificate expired on {expires:%Y-%m-%d}", fix)
    if expires - now < timedelta(days=CERTIFICATE_WARN_DAYS):
        return warn("mpesa.certificate", f"the certificate expires on {expires:%Y-%m-%d}", fix)
    return ok("mpesa.certificate", f"{summary['subject']}, valid until {expires:%Y-%m-%d}")


def check_mpesa_token(mpesa: mpesa_config.MpesaSettings) -> CheckResult:
    """The consumer key and secret get an access token, as the settings page's Test connection
    does: the shared cached token while it is valid (forcing a new one would invalidate the
    token every other process is using)."""
    url = mpesa.resolved_base_url
    # The token needs only the app's key and secret: certificate trouble is reported on its own.
    app_only = replace(
        mpesa, security_credential="", initiator_password="", certificate="", certificate_path=""
    )
    try:
        mpesa_config.client(app_only).access_token(force_refresh=False)
    except DarajaAuthError as exc:
        return fail(
            "mpesa.token",
            f"{url} refused the consumer key and secret: {_first_line(exc)}",
            f"Copy the consumer key and secret of the {mpesa.environment} app from the Daraja "
            "portal (My Apps; sandbox keys do not work in production) into "
            "DAYSTAR_MPESA_CONSUMER_KEY and DAYSTAR_MPESA_CONSUMER_SECRET or the settings page.",
        )
    except DarajaError as exc:
        return fail(
            "mpesa.token",
            f"no access token from {url}: {_first_line(exc)}",
            "Check that this machine reaches the address (DNS, firewall, outbound HTTPS) and "
            "that DAYSTAR_MPESA_ENV / DAYSTAR_MPESA_BASE_URL name the right one.",
        )
    except ServiceError as exc:
        return fail("mpesa.token", exc.message, MPESA_FIX)
    return ok(
        "mpesa.token",
        f"{url} ({mpesa.environment}) gave an access token (or the shared one, fetched with these "
        "credentials within the hour, is still valid)",
    )


# --- notification providers --------------------------------------------------------------------


def _provider_variables(provider: str, fields: list[str]) -> str:
    names = NOTIFY_PROVIDER_VARIABLES[provider]
    return ", ".join(f"DAYSTAR_{provider.upper()}_{names[field]}" for field in fields)


def check_provider(provider: str) -> CheckResult:
    """A provider's settings are absent, or complete and usable. The provider clients have no
    call that checks credentials without sending a message, so complete settings are all that
    is checked (say so)."""
    config_class, _client_class, required = providers.CLIENTS[provider]
    values = {
        k: v
        for k, v in notify_config.provider_values(provider).items()
        if k not in providers.NOT_CLIENT_FIELDS
    }
    name = f"notify.{provider}"
    if not values:
        return ok(name, "not configured (the gateway skips it)")
    missing = [field for field in required if not values.get(field)]
    if missing:
        return warn(
            name,
            f"partly configured: {', '.join(missing)} missing, so the gateway skips it",
            f"Set {_provider_variables(provider, missing)} or complete it on Integrations > "
            "Notifications > Settings.",
        )
    if providers.client_for(provider) is None:
        try:
            config_class(**values)
            reason = "the client refused them"
        except (TypeError, ValueError) as exc:
            reason = str(exc)
        return fail(
            name,
            f"settings cannot be used: {reason}",
            "Correct them on Integrations > Notifications > Settings (or the DAYSTAR_"
            f"{provider.upper()}_* environment variables).",
        )
    return ok(
        name,
        "settings complete; credentials not verified (the client has no call that checks them "
        "without sending): send a test message from Integrations > Notifications",
    )


def check_channel(channel: str) -> CheckResult:
    """At least one provider in the channel's failover order is configured."""
    order = notify_config.current().order(channel)
    usable = [name for name in order if providers.client_for(name) is not None]
    label = "SMS" if channel == "sms" else "email"
    if not usable:
        return warn(
            f"notify.{channel}",
            f"no {label} provider in the failover order ({', '.join(order) or 'empty'}) is "
            f"configured: {label} notifications fail",
            "Configure a provider on Integrations > Notifications > Settings (or its DAYSTAR_"
            "<PROVIDER>_* variables) and put it in the failover order.",
        )
    return ok(f"notify.{channel}", f"{label} goes through {', '.join(usable)} (failover order)")


# --- all of them -------------------------------------------------------------------------------


def _guarded(name: str, check: Callable[..., CheckResult], *args) -> CheckResult:
    """The check's answer; a check that raised is a FAIL naming the error. The session is rolled
    back either way, so that one failed statement (PostgreSQL) does not spoil the next check."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001 (the doctor reports, it does not crash)
        return fail(
            name,
            f"the check failed: {type(exc).__name__}: {_first_line(exc)}",
            "Fix the cause named, then run doctor again.",
        )
    finally:
        _rollback()


def _rollback() -> None:
    with contextlib.suppress(Exception):  # a database that is down has nothing to roll back
        db.session.rollback()


def _read_settings(reader: Callable):
    """The settings `reader` returns, or the reason they cannot be read."""
    try:
        return reader(), None
    except ValueError as exc:  # a stored secret that does not decrypt
        return None, f"the stored settings cannot be read ({exc})"
    except Exception as exc:  # noqa: BLE001
        return None, f"the stored settings cannot be read ({_first_line(exc)})"
    finally:
        _rollback()


def run_checks() -> list[CheckResult]:
    """Every check, in the order they are printed; a check whose prerequisite failed (the
    database, Redis, readable settings) is reported as not checked."""
    config = current_app.config
    results = [
        check_environment(config),
        check_secret_key(config),
        check_encryption_key(config),
        check_database_url(config),
        check_proxy_fix(config),
        check_api_https(config),
    ]
    database = _guarded("database", check_database)
    database_up = database.status is not Status.FAIL
    results.append(database)
    if database_up:
        results.append(_guarded("migrations", check_migrations))
        found = _secrets_found()  # each stored secret decrypted once per run
        results.append(_guarded("stored_secrets", check_stored_secrets, found))
        mpesa, mpesa_problem = _read_settings(mpesa_config.current)
        unreadable = [label for label in found[1] if label.startswith("setting mpesa.")] if found else []  # fmt: skip
        if unreadable:
            # They read as not set: say why rather than "M-Pesa is not configured".
            mpesa, mpesa_problem = None, f"{', '.join(unreadable)} cannot be decrypted"
    else:
        down = "the database does not answer"
        results += [not_checked(name, down) for name in ("migrations", "stored_secrets")]
        mpesa, mpesa_problem = None, down
    if mpesa is not None:
        results.append(_guarded("config.public_base_url", check_public_base_url, config, mpesa))
    else:
        results.append(not_checked("config.public_base_url", mpesa_problem))
    redis = _guarded("redis", check_redis)
    results.append(redis)
    redis_up = redis.status is not Status.FAIL
    results += _job_results(redis_up)
    results += _mpesa_results(config, mpesa, mpesa_problem, redis_up)
    results += _notification_results(database_up)
    return results


def _job_results(redis_up: bool) -> list[CheckResult]:
    if not redis_up:
        names = [*(f"workers.{queue}" for queue in QUEUES), "cron"]
        return [not_checked(name, "Redis does not answer") for name in names]
    results = [_guarded(f"workers.{queue}", check_queue_workers, queue) for queue in QUEUES]
    results.append(_guarded("cron", check_cron_scheduler))
    return results


def _mpesa_results(config, mpesa, problem: str | None, redis_up: bool) -> list[CheckResult]:
    if mpesa is None:
        return [not_checked("mpesa.settings", problem)]
    results = [check_mpesa_environment(config, mpesa)]
    if not mpesa_is_set_up(mpesa):
        return results
    results += [
        check_mpesa_use(use, missing) for use, missing in monitor.missing_settings(mpesa).items()
    ]
    if mpesa.certificate or mpesa.certificate_path:
        results.append(_guarded("mpesa.certificate", check_mpesa_certificate, mpesa))
    if mpesa.configured:
        results.append(
            _guarded("mpesa.token", check_mpesa_token, mpesa)
            if redis_up
            else not_checked("mpesa.token", "Redis (the shared token cache) does not answer")
        )
    return results


def _notification_results(database_up: bool) -> list[CheckResult]:
    if not database_up:
        return [not_checked("notify", "the database does not answer")]
    _, problem = _read_settings(notify_config.current)
    if problem:
        return [not_checked("notify", problem)]
    names = [*notify_config.SMS_PROVIDERS, *notify_config.EMAIL_PROVIDERS]
    results = [_guarded(f"notify.{name}", check_provider, name) for name in names]
    results += [
        _guarded(f"notify.{channel}", check_channel, channel) for channel in ("sms", "email")
    ]
    return results


def has_failures(results: list[CheckResult]) -> bool:
    return any(result.status is Status.FAIL for result in results)
