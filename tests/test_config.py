"""Configuration: production refuses to start without its secrets and names what is missing."""

import os

import pytest
from sqlalchemy import create_engine

from app import create_app
from config import ConfigError, ProductionConfig, config_from_env, engine_options


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SECRET_KEY", "DATABASE_URL", "DAYSTAR_ENCRYPTION_KEY", "DAYSTAR_ENV"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_production_names_every_missing_variable(clean_env):
    with pytest.raises(ConfigError) as err:
        create_app(ProductionConfig)
    message = str(err.value)
    for name in ("SECRET_KEY", "DATABASE_URL", "DAYSTAR_ENCRYPTION_KEY"):
        assert name in message


def test_production_names_the_one_missing_variable(clean_env):
    clean_env.setenv("SECRET_KEY", "s" * 40)
    clean_env.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/db")
    with pytest.raises(ConfigError, match="DAYSTAR_ENCRYPTION_KEY$"):
        ProductionConfig.prepare()


def test_production_starts_with_its_variables_and_secure_cookies(clean_env):
    clean_env.setenv("SECRET_KEY", "s" * 40)
    clean_env.setenv("DATABASE_URL", "sqlite://")
    clean_env.setenv("DAYSTAR_ENCRYPTION_KEY", "k" * 44)

    class Prod(ProductionConfig):
        SQLALCHEMY_DATABASE_URI = "sqlite://"

    app = create_app(Prod)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_is_the_default_and_unknown_env_is_refused(clean_env):
    assert config_from_env().ENV_NAME == "development"
    clean_env.setenv("DAYSTAR_ENV", "staging")
    with pytest.raises(ConfigError, match="staging"):
        config_from_env()


def test_postgresql_connections_run_without_jit():
    assert engine_options("sqlite:///instance/daystar.db") == {}
    options = engine_options("postgresql+psycopg://daystar@db.internal/daystar")
    assert options["connect_args"] == {"options": "-c jit=off"}
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        engine = create_engine(url, **engine_options(url))
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
        finally:
            engine.dispose()


def test_jit_off_keeps_the_urls_own_connection_options():
    options = engine_options(
        "postgresql+psycopg://daystar@db/daystar?options=-csearch_path%3Dsacco"
    )
    assert options["connect_args"] == {"options": "-csearch_path=sacco -c jit=off"}
