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

# M-Pesa: unless DAYSTAR_MPESA_ENV says otherwise, the Daraja sandbox (sandbox/) plays Safaricom
# on loopback; its key and certificate are kept in instance/sandbox/ across restarts.
export DAYSTAR_MPESA_ENV="${DAYSTAR_MPESA_ENV:-simulator}"
export SANDBOX_PORT="${SANDBOX_PORT:-5050}"
if [ "$DAYSTAR_MPESA_ENV" = "simulator" ]; then
  export SANDBOX_DARAJA_KEY_PATH="$PWD/instance/sandbox/daraja-key.pem"
  export SANDBOX_DARAJA_CERT_PATH="$PWD/instance/sandbox/daraja-cert.pem"
  export DAYSTAR_MPESA_BASE_URL="${DAYSTAR_MPESA_BASE_URL:-http://127.0.0.1:$SANDBOX_PORT}"
  export DAYSTAR_MPESA_CONSUMER_KEY="${DAYSTAR_MPESA_CONSUMER_KEY:-sandbox-consumer-key}"
  export DAYSTAR_MPESA_CONSUMER_SECRET="${DAYSTAR_MPESA_CONSUMER_SECRET:-sandbox-consumer-secret}"
  export DAYSTAR_MPESA_SHORTCODE="${DAYSTAR_MPESA_SHORTCODE:-174379}"
  export DAYSTAR_MPESA_PASSKEY="${DAYSTAR_MPESA_PASSKEY:-bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919}"
  export DAYSTAR_MPESA_INITIATOR_NAME="${DAYSTAR_MPESA_INITIATOR_NAME:-testapi}"
  export DAYSTAR_MPESA_INITIATOR_PASSWORD="${DAYSTAR_MPESA_INITIATOR_PASSWORD:-Sandbox#Initiator1}"
  export DAYSTAR_MPESA_CERTIFICATE="${DAYSTAR_MPESA_CERTIFICATE:-$SANDBOX_DARAJA_CERT_PATH}"
  export DAYSTAR_PUBLIC_BASE_URL="${DAYSTAR_PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
  PROCFILE_SANDBOX="sandbox: $BIN/flask --app sandbox run --host 127.0.0.1 --port $SANDBOX_PORT"
else
  PROCFILE_SANDBOX=""
fi

"$BIN/flask" db upgrade
"$BIN/flask" seed-demo --if-empty --members "${DEMO_MEMBERS:-2000}"
"$BIN/flask" notify ensure-templates
DEMO_EMAIL="admin@daystar.co.ke"
DEMO_PASSWORD="daystar-demo-admin"  # the local demo database only
echo "$DEMO_PASSWORD" | "$BIN/flask" users create "$DEMO_EMAIL" --role admin --name "Demo Administrator" \
  --password-stdin --if-missing

cat <<MSG

  Daystar Integrations is starting at http://127.0.0.1:$PORT/
  Sign in as $DEMO_EMAIL with the password $DEMO_PASSWORD
  (web, worker and cron scheduler run together; Ctrl-C stops them)
MSG
if [ -n "$PROCFILE_SANDBOX" ]; then
  cat <<MSG
  M-Pesa goes to the Daraja sandbox at http://127.0.0.1:$SANDBOX_PORT/sandbox/
  (virtual phone: /sandbox/phone, paybill: /sandbox/paybill, statement: /sandbox/statement.csv)
MSG
fi
echo
{ cat Procfile.dev; [ -n "$PROCFILE_SANDBOX" ] && echo "$PROCFILE_SANDBOX"; } > .run/Procfile
"$BIN/honcho" start -d . -f .run/Procfile
