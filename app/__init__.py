"""The application factory."""

import warnings

from flask import Flask
from sqlalchemy import exc as sa_exc
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, config_from_env


def create_app(config: type[Config] | None = None) -> Flask:
    """Build the app for `config` (by default the class DAYSTAR_ENV names)."""
    config = config or config_from_env()
    config.prepare()
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config)
    from app.logging_setup import configure_logging

    configure_logging(app)  # first, so that every request has its id before other hooks run
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        # Behind `hops` reverse proxies: believe their X-Forwarded-For and X-Forwarded-Proto.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    register_extensions(app)
    register_blueprints(app)
    register_template_helpers(app)

    from app.errors import register_error_handlers

    register_error_handlers(app)
    from app.cli import register_cli

    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from app.db_ping import ping_idle_connections
    from app.extensions import csrf, db, limiter, login_manager, migrate
    from app.hooks import make_plugin_manager
    from app.jobs import init_redis

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite keeps NUMERIC as a number; SQLAlchemy rounds it back to the column's two places.
        # PostgreSQL, the production database, stores exact decimals.
        warnings.filterwarnings(
            "ignore", r".*does \*not\* support Decimal objects natively", sa_exc.SAWarning
        )
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    init_redis(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    limiter.init_app(app)
    app.extensions["daystar_hooks"] = make_plugin_manager(app.config["DAYSTAR_PLUGINS"])
    # Imported for their side effects: the user loader and the outbox's after-commit listener.
    from app import auth  # noqa: F401
    from app.services import after_commit, events  # noqa: F401

    with app.app_context():
        ping_idle_connections(db.engine, app.config["DB_PING_AFTER_IDLE_SECONDS"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _sqlite_pragmas(app)


def _sqlite_pragmas(app: Flask) -> None:
    from sqlalchemy import event

    from app.extensions import db
    from app.services.prompt_write import BUSY_TIMEOUT_MS, PROMPT

    with app.app_context():

        @event.listens_for(db.engine, "connect")
        def _on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Write-ahead log: readers (the pages, a callback's lookups) no longer wait for a
            # writer (a worker crediting a payment), and a writer waits only for another writer.
            # A file setting: kept by the database; an in-memory database stays "memory".
            # synchronous stays FULL: every commit reaches the disk before it returns.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(db.engine, "checkin")
        def _on_checkin(dbapi_connection, record):
            if record.info.pop(PROMPT, False) and dbapi_connection is not None:  # set to 0 by
                # services/prompt_write.py for one write; every other use waits as before
                dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def register_blueprints(app: Flask) -> None:
    from app.blueprints import STAFF_BLUEPRINTS
    from app.blueprints.api import register_api
    from app.blueprints.callbacks import bp as callbacks_bp
    from app.blueprints.ops import bp as ops_bp

    for blueprint in STAFF_BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_api(app)
    app.register_blueprint(callbacks_bp)
    app.register_blueprint(ops_bp)


def register_template_helpers(app: Flask) -> None:
    from app import formatting
    from app.auth import can

    app.jinja_env.globals.update(can=can)
    app.jinja_env.filters.update(
        money=formatting.money, datefmt=formatting.datefmt, datetimefmt=formatting.datetimefmt
    )
