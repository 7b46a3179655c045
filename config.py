"""Configuration classes, read from the environment.

Development is the default. Production refuses to start without its secrets: none of them has a
default anywhere in this file.
"""

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

BASE_DIR = Path(__file__).resolve().parent


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret(name: str) -> str:
    """The environment's value, or a random one kept in instance/dev-secrets.json (development)."""
    if os.environ.get(name):
        return os.environ[name]
    path = BASE_DIR / "instance" / "dev-secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = Fernet.generate_key().decode()
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    return stored[name]


# Environment variables that override what staff stored on the M-Pesa settings page.
MPESA_ENVIRONMENT_VARIABLES = {
    "environment": "DAYSTAR_MPESA_ENV",
    "base_url": "DAYSTAR_MPESA_BASE_URL",
    "consumer_key": "DAYSTAR_MPESA_CONSUMER_KEY",
    "consumer_secret": "DAYSTAR_MPESA_CONSUMER_SECRET",
    "shortcode": "DAYSTAR_MPESA_SHORTCODE",
    "passkey": "DAYSTAR_MPESA_PASSKEY",
    "initiator_name": "DAYSTAR_MPESA_INITIATOR_NAME",
    "initiator_password": "DAYSTAR_MPESA_INITIATOR_PASSWORD",
    "security_credential": "DAYSTAR_MPESA_SECURITY_CREDENTIAL",
    "certificate_path": "DAYSTAR_MPESA_CERTIFICATE",
    "b2c_shortcode": "DAYSTAR_MPESA_B2C_SHORTCODE",
    "callback_secret": "DAYSTAR_MPESA_CALLBACK_SECRET",
    "public_base_url": "DAYSTAR_PUBLIC_BASE_URL",
}


# Each notification provider's settings (the client's config field -> the variable's suffix):
# DAYSTAR_<PROVIDER>_<SUFFIX> overrides what staff stored, e.g. DAYSTAR_TWILIO_AUTH_TOKEN.
NOTIFY_PROVIDER_VARIABLES = {
    "twilio": {
        "account_sid": "ACCOUNT_SID",
        "auth_token": "AUTH_TOKEN",
        "from_number": "FROM",
        "base_url": "BASE_URL",
    },
    "africastalking": {
        "username": "USERNAME",
        "api_key": "API_KEY",
        "sender_id": "FROM",
        "base_url": "BASE_URL",
        "callback_secret": "CALLBACK_SECRET",
    },
    "infobip": {
        "api_key": "API_KEY",
        "sender": "FROM",
        "base_url": "BASE_URL",
        "callback_secret": "CALLBACK_SECRET",
    },
    "sendgrid": {
        "api_key": "API_KEY",
        "from_address": "FROM",
        "base_url": "BASE_URL",
        "webhook_public_key": "WEBHOOK_PUBLIC_KEY",
    },
    "mailgun": {
        "api_key": "API_KEY",
        "domain": "DOMAIN",
        "from_address": "FROM",
        "region": "REGION",
        "base_url": "BASE_URL",
        "webhook_signing_key": "WEBHOOK_SIGNING_KEY",
    },
    "ses": {
        "access_key_id": "ACCESS_KEY_ID",
        "secret_access_key": "SECRET_ACCESS_KEY",
        "region": "REGION",
        "from_address": "FROM",
        "configuration_set": "CONFIGURATION_SET",
        "base_url": "BASE_URL",
        "sns_topic_arns": "SNS_TOPIC_ARNS",
    },
}
# Environment variables that override the notification settings page.
NOTIFY_ENVIRONMENT_VARIABLES = {
    "sms_providers": "DAYSTAR_SMS_PROVIDERS",
    "email_providers": "DAYSTAR_EMAIL_PROVIDERS",
    **{
        f"{provider}.{field}": f"DAYSTAR_{provider.upper()}_{suffix}"
        for provider, variables in NOTIFY_PROVIDER_VARIABLES.items()
        for field, suffix in variables.items()
    },
}


def _overrides(variables: dict[str, str]) -> dict[str, str]:
    """The settings that environment variables give, by setting name."""
    return {
        key: os.environ[name] for key, name in variables.items() if os.environ.get(name, "").strip()
    }


def engine_options(url: str | None) -> dict:
    """SQLAlchemy engine options for the database `url` names."""
    # No pool_pre_ping: a connection is pinged only after it sat idle (app/db_ping.py).
    options: dict = {}
    if url and url.startswith("postgresql"):
        # No JIT compilation: the API's and the pages' queries are short, and on the financial
        # summary's aggregates JIT spent 110-600 ms compiling per query to save less than that
        # (bench/api.py, 200,000 loans); it starts once a plan costs over jit_above_cost.
        # The URL's own `options` (a search_path, say) are kept: connect_args would replace them.
        own = make_url(url).query.get("options", "")
        own = " ".join(own) if isinstance(own, tuple) else own
        options["connect_args"] = {"options": f"{own} -c jit=off".strip()}
    return options


class ConfigError(RuntimeError):
    """The configuration cannot run: the message names what is missing."""


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    DAYSTAR_ENCRYPTION_KEY = os.environ.get("DAYSTAR_ENCRYPTION_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    SQLALCHEMY_ENGINE_OPTIONS = engine_options(SQLALCHEMY_DATABASE_URI)
    # A pooled connection idle longer than this is pinged before use (app/db_ping.py).
    DB_PING_AFTER_IDLE_SECONDS = 1.0
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    # RQ: synchronous execution is for unit tests only.
    RQ_ASYNC = True
    RQ_QUEUES = ("high", "default", "low")
    # worker.py lowers its own CPU priority by this much (os.nice; 0 leaves it): on a busy machine
    # the web processes answering M-Pesa and the providers come before the jobs behind them.
    # Unset: 10 on PostgreSQL, 0 on SQLite (see worker.worker_nice).
    DAYSTAR_WORKER_NICE = os.environ.get("DAYSTAR_WORKER_NICE") or None

    # Business rules an administrator may tune.
    LOAN_DEFAULT_AFTER_DAYS = _env_int("DAYSTAR_LOAN_DEFAULT_AFTER_DAYS", 90)
    OUTBOX_SWEEP_AFTER_SECONDS = _env_int("DAYSTAR_OUTBOX_SWEEP_AFTER_SECONDS", 60)
    LOGIN_MAX_FAILURES = _env_int("DAYSTAR_LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCKOUT_MINUTES = _env_int("DAYSTAR_LOGIN_LOCKOUT_MINUTES", 15)
    PAGE_SIZE = 25
    TIMEZONE = "Africa/Nairobi"

    # The accounting API. A key's own rate limit, when set, replaces the default.
    DAYSTAR_API_RATE_LIMIT_PER_MINUTE = _env_int("DAYSTAR_API_RATE_LIMIT_PER_MINUTE", 600)
    DAYSTAR_API_LOG_RETENTION_DAYS = _env_int("DAYSTAR_API_LOG_RETENTION_DAYS", 90)
    # Retention (app/services/retention.py, nightly): integration log entries are deleted, and
    # notifications' message bodies blanked (the row and its status stay), after this many days.
    DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS = _env_int("DAYSTAR_INTEGRATION_LOG_RETENTION_DAYS", 180)
    DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS = _env_int(
        "DAYSTAR_NOTIFICATION_BODY_RETENTION_DAYS", 365
    )
    # Refuse plain-HTTP API requests (403). Behind a reverse proxy set PROXY_FIX_HOPS to the
    # number of proxies, so that X-Forwarded-Proto and X-Forwarded-For are believed.
    API_REQUIRE_HTTPS = _env_bool("API_REQUIRE_HTTPS", False)
    PROXY_FIX_HOPS = _env_int("PROXY_FIX_HOPS", 0)
    # Flask-Limiter (API only) keeps its counters in REDIS_URL under this prefix, falling back
    # to per-process memory while Redis is unreachable.
    RATELIMIT_KEY_PREFIX = "daystar-api"
    RATELIMIT_STRATEGY = "fixed-window"
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {
        "key_prefix": "daystar-ratelimit",
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
    }

    # Webhooks (Standard Webhooks). Private, loopback and link-local destinations (and plain
    # http://) are refused unless this is set: development and tests set it, production must not
    # unless its receivers are deliberately on the internal network.
    WEBHOOK_ALLOW_PRIVATE_URLS = _env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
    WEBHOOK_TIMEOUT_SECONDS = 15
    # Waits after the 1st, 2nd, ... 7th failed attempt: 8 attempts in all over about 27.6 hours.
    WEBHOOK_RETRY_DELAYS_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)
    WEBHOOK_DISABLE_AFTER_FAILING_DAYS = 5
    WEBHOOK_SECRET_OVERLAP_HOURS = 24

    # M-Pesa: settings from the environment win over the settings page (see services.mpesa.config).
    MPESA_OVERRIDES = _overrides(MPESA_ENVIRONMENT_VARIABLES)
    # How long each process may reuse the M-Pesa and provider settings on the callback routes
    # (services.settings.stored): a changed callback secret, key or allow-list reaches every
    # process within this many seconds. (DAYSTAR_MPESA_SETTINGS_CACHE_SECONDS: its first name.)
    CALLBACK_SETTINGS_CACHE_SECONDS = _env_int(
        "DAYSTAR_CALLBACK_SETTINGS_CACHE_SECONDS",
        _env_int("DAYSTAR_MPESA_SETTINGS_CACHE_SECONDS", 5),
    )
    NOTIFY_OVERRIDES = _overrides(NOTIFY_ENVIRONMENT_VARIABLES)

    # Logs (app/logging_setup.py): "json" (one object per line) or "text", and the root level.
    DAYSTAR_LOG_FORMAT = os.environ.get("DAYSTAR_LOG_FORMAT", "text")
    DAYSTAR_LOG_LEVEL = os.environ.get("DAYSTAR_LOG_LEVEL", "INFO")
    # /metrics (app/blueprints/ops): a bearer token and/or an allow-list of CIDRs (comma or
    # space separated); with neither, /metrics answers 404, except from loopback when
    # METRICS_OPEN_ON_LOOPBACK is set (development).
    DAYSTAR_METRICS_TOKEN = os.environ.get("DAYSTAR_METRICS_TOKEN")
    DAYSTAR_METRICS_ALLOWED_IPS = os.environ.get("DAYSTAR_METRICS_ALLOWED_IPS", "")
    METRICS_OPEN_ON_LOOPBACK = False

    # Plugins: comma-separated module paths registered with the hook registry at start-up.
    DAYSTAR_PLUGINS = [
        p.strip() for p in os.environ.get("DAYSTAR_PLUGINS", "").split(",") if p.strip()
    ]

    @classmethod
    def prepare(cls) -> None:
        """Make the configuration ready to run, or raise ConfigError naming what is missing."""


class DevelopmentConfig(Config):
    """Local development: SQLite in instance/, a fixed throwaway secret, the local Redis."""

    ENV_NAME = "development"
    DEBUG = True
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'daystar.db'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = engine_options(SQLALCHEMY_DATABASE_URI)
    WEBHOOK_ALLOW_PRIVATE_URLS = _env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", True)
    METRICS_OPEN_ON_LOOPBACK = True

    @classmethod
    def prepare(cls) -> None:
        # Generated once per checkout into instance/ (never committed), so the web app and the
        # worker share them across restarts; production refuses to start without its own.
        cls.SECRET_KEY = _dev_secret("SECRET_KEY")
        cls.DAYSTAR_ENCRYPTION_KEY = _dev_secret("DAYSTAR_ENCRYPTION_KEY")


class TestingConfig(Config):
    """The test suite: SQLite in memory unless TEST_DATABASE_URL names PostgreSQL."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-only"  # noqa: S105
    DAYSTAR_ENCRYPTION_KEY = "dGVzdGluZy1vbmx5LWtleS1ub3QtYS1zZWNyZXQtMDA="  # noqa: S105
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SQLALCHEMY_ENGINE_OPTIONS = engine_options(SQLALCHEMY_DATABASE_URI)
    REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    WTF_CSRF_ENABLED = False
    SERVER_NAME = None
    WEBHOOK_ALLOW_PRIVATE_URLS = True  # receivers in tests listen on 127.0.0.1
    CALLBACK_SETTINGS_CACHE_SECONDS = 0  # tests change settings between requests; one test caches


class ProductionConfig(Config):
    """Production: PostgreSQL, secure cookies, and no start without SECRET_KEY, DATABASE_URL and
    DAYSTAR_ENCRYPTION_KEY."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    API_REQUIRE_HTTPS = _env_bool("API_REQUIRE_HTTPS", True)
    DAYSTAR_LOG_FORMAT = os.environ.get("DAYSTAR_LOG_FORMAT", "json")
    REQUIRED = ("SECRET_KEY", "DATABASE_URL", "DAYSTAR_ENCRYPTION_KEY")

    @classmethod
    def prepare(cls) -> None:
        missing = [name for name in cls.REQUIRED if not os.environ.get(name)]
        if missing:
            raise ConfigError(
                "Production configuration is incomplete: set the environment variable(s) "
                + ", ".join(missing)
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env() -> type[Config]:
    """The config class named by DAYSTAR_ENV (development when unset)."""
    name = os.environ.get("DAYSTAR_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(
            f"DAYSTAR_ENV={name!r} is not one of {', '.join(sorted(CONFIGS))}"
        ) from None
