"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be changed with the environment variable named beside it, so that systemd's
EnvironmentFile and platforms with a Procfile (which set PORT and WEB_CONCURRENCY) need no edit
here. Outside calls (M-Pesa, SMS, email, webhooks) run in the RQ workers, never in a web request,
so a request waits only for the database and Redis: a few threads per process cover that wait.
"""

import multiprocessing
import os

MAX_DEFAULT_WORKERS = 12


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def default_workers(cores: int | None = None) -> int:
    """2 x cores + 1 processes, capped: each holds its own database pool and memory."""
    cores = cores or multiprocessing.cpu_count()
    return min(2 * cores + 1, MAX_DEFAULT_WORKERS)


# Where to listen. GUNICORN_BIND wins (systemd behind nginx: 127.0.0.1:8000); else a platform's
# PORT on every interface (the platform's router is in front); else loopback only, so that
# gunicorn is never reached around the TLS proxy whose X-Forwarded-* headers the app believes.
bind = os.environ.get("GUNICORN_BIND") or (
    f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
)
wsgi_app = "wsgi:app"

# Processes x threads is the most requests served at once; each thread may hold one database
# connection, so PostgreSQL must allow web machines x workers x threads, plus the RQ workers.
workers = _int("WEB_CONCURRENCY", default_workers())
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread"

# A request that takes longer is a bug (exports stream; outside calls are jobs): the worker is
# killed and restarted, and the client gets 502 from nginx.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # finish requests on restart/stop
keepalive = _int("GUNICORN_KEEPALIVE", 5)  # > 0: nginx keeps upstream connections open

# Restart each worker after about this many requests (the jitter spreads the restarts), which
# bounds any slow memory growth.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)

# gunicorn sets the request's scheme from X-Forwarded-Proto only on connections from these
# addresses (nginx on this machine). The app's ProxyFix (PROXY_FIX_HOPS) is what makes the
# client's address and scheme, from X-Forwarded-For and -Proto, the ones the app sees.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs to stdout/stderr (journald or the platform collects them). The access log names the
# client nginx saw (X-Forwarded-For), the request id nginx set or passed on (X-Request-ID;
# "-" without one: the app's own log lines carry the same id), and the time taken.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = (
    '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms '
    '"%(f)s" "%(a)s" request_id=%({x-request-id}i)s'
)

proc_name = "daystar-web"
# Heartbeat files on a RAM disk where there is one (containers often have a disk-backed /tmp).
RAM_DISK = "/dev/shm"  # noqa: S108 (gunicorn's own heartbeat files, not data)
if os.path.isdir(RAM_DISK):
    worker_tmp_dir = RAM_DISK

# gunicorn's control socket (`gunicornc`) is off: systemd and the platforms manage the process
# with signals (HUP reloads, TERM stops), and its default path is in $HOME, which the systemd
# units make read-only. Set GUNICORN_CONTROL_SOCKET=/run/daystar-web/gunicorn.ctl to have it.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def on_starting(server) -> None:
    """Empty the Prometheus multi-process directory (PROMETHEUS_MULTIPROC_DIR): counters from an
    earlier run would otherwise be added to this one's."""
    import shutil

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
