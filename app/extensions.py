"""Extension objects, created unbound; create_app() initialises each one."""

import flask_limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so Alembic migrations can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter, whose state lives on this one object: each init_app() starts on the new
    app's storage, not on an earlier app's "storage is down" flag (tests build several apps)."""

    def init_app(self, app) -> None:
        self._storage_dead = False
        super().init_app(app)


# Configured by the RATELIMIT_* settings; only the accounting API is limited
# (app.blueprints.api.auth: per key, with a request filter exempting everything else).
limiter = Limiter(key_func=get_remote_address)
