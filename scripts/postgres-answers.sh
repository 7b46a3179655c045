#!/bin/sh
# Exit 0 when the PostgreSQL server of the SQLAlchemy URL $1 accepts a connection.
exec .venv/bin/python - "$1" <<'PY'
import sys
from sqlalchemy import create_engine, text
try:
    with create_engine(sys.argv[1], connect_args={"connect_timeout": 3}).connect() as conn:
        conn.execute(text("SELECT 1"))
except Exception:
    sys.exit(1)
PY
