"""Fixtures: the app on SQLite (or PostgreSQL when TEST_DATABASE_URL is set), a real Redis on a
dedicated database number, clients signed in per role, and an RQ burst worker."""

import os
from datetime import date
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db as _db
from app.jobs import QUEUES, get_queue
from app.models import Role
from config import TestingConfig
from tests import factories

# The provider sandbox (sandbox/) served on loopback: `daraja_sandbox` and `sandbox_server`.
pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.live_server", "tests.fixtures.mpesa"]

PASSWORD = "correct horse battery"


class IsolatedClient(FlaskClient):
    """Runs each request in an app context of its own, as a real server does: a fresh `g`
    (so a signed-in user never leaks between clients) and a fresh database session."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


CLAIM_KEY = "daystar-test-run"


def _claim_redis_db(base_url: str) -> str:
    """A Redis URL whose database number no other test run is using (runs may be concurrent)."""
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    root = base_url.rsplit("/", 1)[0]
    for number in range(15, 0, -1):
        conn = Redis.from_url(f"{root}/{number}")
        if conn.set(CLAIM_KEY, os.getpid(), nx=True, ex=3600):
            return f"{root}/{number}"
    raise RuntimeError("every Redis database 1-15 is claimed by another test run")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return (
        os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db"
    )


@pytest.fixture(scope="session")
def engine_options(database_url):
    """On PostgreSQL, a schema of this run's own, so that concurrent runs never collide."""
    if not database_url.startswith("postgresql"):
        yield {}
        return
    schema = f"test_{os.getpid()}"
    admin = create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield {"connect_args": {"options": f"-csearch_path={schema}"}}
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def app(database_url, engine_options):
    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = engine_options
        REDIS_URL = _claim_redis_db("redis://127.0.0.1:6379/0")

    app = create_app(Config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        _db.drop_all()
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.drop_all()


@pytest.fixture(scope="session")
def redis_conn(app) -> Redis:
    conn = Redis.from_url(app.config["REDIS_URL"])
    yield conn
    conn.flushdb()  # also releases the claim


def _empty_tables() -> None:
    _db.session.remove()
    tables = list(reversed(_db.metadata.sorted_tables))
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture(autouse=True)
def app_ctx(app, redis_conn):
    """Every test runs in an app context, on empty tables and an empty Redis database."""
    redis_conn.flushdb()
    redis_conn.set(CLAIM_KEY, os.getpid(), ex=3600)
    with app.app_context():
        yield
        _empty_tables()


@pytest.fixture
def db(app_ctx):
    return _db


@pytest.fixture
def client(app) -> IsolatedClient:
    return app.test_client()


@pytest.fixture
def staff_user():
    """make(role) -> a StaffUser with the shared test password."""
    return lambda role, email=None: factories.staff(role, email=email, password=PASSWORD)


@pytest.fixture
def login(app, staff_user):
    """login(role) -> a client signed in as a new staff member with that role."""

    def _login(role: str) -> IsolatedClient:
        user = staff_user(role)
        client = app.test_client()
        response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.text
        client.user = user
        return client

    return _login


@pytest.fixture
def admin_client(login):
    return login(Role.ADMIN)


@pytest.fixture
def officer_client(login):
    return login(Role.LOAN_OFFICER)


@pytest.fixture
def viewer_client(login):
    return login(Role.VIEWER)


@pytest.fixture
def run_jobs(redis_conn):
    """Run every queued job to completion in this process (RQ SimpleWorker, burst mode)."""

    def _run() -> None:
        queues = [get_queue(name) for name in QUEUES]
        SimpleWorker(queues, connection=redis_conn).work(burst=True)

    return _run


@pytest.fixture
def member():
    return factories.member()


@pytest.fixture
def product():
    return factories.product()


@pytest.fixture
def active_loan(member, product):
    """A disbursed loan of 12,000 over 6 months at 12% reducing balance."""
    return factories.active_loan(
        member, product, Decimal("12000"), 6, disbursed_on=date(2026, 1, 5)
    )
