#!/usr/bin/env bash
# `make run`: migrate, seed the demo SACCO on first run, make sure Redis answers, then start the
# web app, the worker and the cron scheduler together (Procfile.dev, run by honcho).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export FLASK_APP=wsgi
export PORT="${PORT:-5000}"
mkdir -p instance .run

redis_answers() {
  "$BIN/python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$1" 2>/dev/null
}

export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
PRIVATE_REDIS_PID=""
if ! redis_answers "$REDIS_URL"; then
  if command -v redis-server >/dev/null 2>&1; then
    port="${DAYSTAR_PRIVATE_REDIS_PORT:-6390}"
    echo "Redis does not answer at $REDIS_URL; starting a private redis-server on port $port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$PWD/.run" --pidfile "$PWD/.run/redis.pid" --logfile "$PWD/.run/redis.log"
    export REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
    redis_answers "$REDIS_URL" || { echo "the private Redis did not start: see .run/redis.log"; exit 1; }
    PRIVATE_REDIS_PID=$(cat .run/redis.pid)
  else
    echo "Redis is needed and none answers at $REDIS_URL."
    echo "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"
    echo "or point REDIS_URL at a running Redis, then run 'make run' again."
    exit 1
  fi
fi
stop_private_redis() { [ -n "$PRIVATE_REDIS_PID" ] && kill "$PRIVATE_REDIS_PID" 2>/dev/null || true; }
trap stop_private_redis EXIT

"$BIN/flask" db upgrade
"$BIN/flask" seed-demo --if-empty --members "${DEMO_MEMBERS:-2000}"
DEMO_EMAIL="admin@daystar.co.ke"
DEMO_PASSWORD="daystar-demo-admin"  # the local demo database only
echo "$DEMO_PASSWORD" | "$BIN/flask" users create "$DEMO_EMAIL" --role admin --name "Demo Administrator" \
  --password-stdin --if-missing

cat <<MSG

  Daystar Integrations is starting at http://127.0.0.1:$PORT/
  Sign in as $DEMO_EMAIL with the password $DEMO_PASSWORD
  (web, worker and cron scheduler run together; Ctrl-C stops them)

MSG
"$BIN/honcho" start -f Procfile.dev
