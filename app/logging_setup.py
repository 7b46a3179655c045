"""Application logs: JSON lines in production, readable text in development; each line carries the
web request's id (or the RQ job's id in a worker), and no secret ever leaves (app.redaction).

configure_logging(app) installs one handler on the root logger (replacing the one an earlier call
installed), so every library's records go through the same filters and format."""

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from app import redaction

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept when it is short and plain (no spaces, no control characters).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"

# The attributes every LogRecord has; anything else on a record came through `extra=`.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "job_id",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


def current_request_id() -> str | None:
    """This web request's id, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


def _current_job_id() -> str | None:
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:
        return None
    return job.id if job is not None else None


class ContextFilter(logging.Filter):
    """Adds `request_id` (web) and `job_id` (worker) to every record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        if not hasattr(record, "job_id"):
            record.job_id = _current_job_id()
        return True


class RedactionFilter(logging.Filter):
    """Replaces secrets in the message, its arguments, extra fields, the exception text and the
    stack by [REDACTED], in the record itself, so that every handler after it sees the redacted
    record. A record that cannot be redacted is replaced by a notice, never let through."""

    _exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.args:
                record.args = redaction.redact_value(record.args)
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: keep what we can, redacted below
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = redaction.redact_text(message), ()
            for name, value in extra_fields(record).items():
                setattr(record, name, redaction.redact_field(name, value))
            for name in ("request_id", "job_id"):
                if isinstance(getattr(record, name, None), str):
                    setattr(record, name, redaction.redact_text(getattr(record, name)))
            if record.exc_info and not record.exc_text:
                record.exc_text = self._exceptions.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redaction.redact_text(record.exc_text)
            if record.stack_info:
                record.stack_info = redaction.redact_text(record.stack_info)
        except Exception:
            record.msg, record.args = "[log record dropped: it could not be redacted]", ()
            record.exc_info = record.exc_text = record.stack_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message, request_id,
    job_id when in a job, exception when there is one, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if getattr(record, "job_id", None):
            entry["job_id"] = record.job_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        for name, value in extra_fields(record).items():
            entry.setdefault(name, value)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL [request or job id] logger: message key=value ...` for people."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        saved = record.request_id if hasattr(record, "request_id") else None
        record.request_id = saved or getattr(record, "job_id", None) or "-"
        try:
            text = super().format(record)
        finally:
            record.request_id = saved
        extras = extra_fields(record)
        if extras:
            text += " " + " ".join(f"{k}={v!r}" for k, v in extras.items())
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def make_handler(log_format: str, stream=None) -> logging.Handler:
    """A handler with the context and redaction filters and the `log_format` formatter, writing
    to `stream` (sys.stderr by default)."""
    if log_format not in FORMATS:
        from config import ConfigError

        raise ConfigError(f"DAYSTAR_LOG_FORMAT={log_format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(app: Flask) -> None:
    """Route every log record through one redacting handler in the configured format, register
    the configured secrets for redaction, and give each request an id."""
    from flask.logging import default_handler

    handler = make_handler(str(app.config.get("DAYSTAR_LOG_FORMAT") or "text").strip().lower())
    handler._daystar = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_daystar", False)]:
        root.removeHandler(old)
    root.handlers.insert(0, handler)  # first, so later handlers see redacted records
    app_level = logging.INFO
    if not app.testing:  # the test runner owns the levels it captures
        level = str(app.config.get("DAYSTAR_LOG_LEVEL") or "INFO").upper()
        if not isinstance(logging.getLevelName(level), int):
            from config import ConfigError

            raise ConfigError(f"DAYSTAR_LOG_LEVEL={level!r} is not a logging level")
        root.setLevel(level)
        app_level = min(app_level, root.level)
    # The app's own lines at INFO even when the root level is higher; DEBUG when it is asked for.
    logging.getLogger("app").setLevel(app_level)
    app.logger.removeHandler(default_handler)
    register_configured_secrets(app.config)
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)


def register_configured_secrets(config) -> None:
    """The secrets the configuration holds (keys, tokens, environment overrides of the M-Pesa and
    provider settings) are redacted wherever they appear."""
    for name in ("SECRET_KEY", "DAYSTAR_ENCRYPTION_KEY", "DAYSTAR_METRICS_TOKEN"):
        redaction.register_secret(config.get(name))
    for overrides in ("MPESA_OVERRIDES", "NOTIFY_OVERRIDES"):
        for name, value in (config.get(overrides) or {}).items():
            if redaction.is_secret_name(name.rsplit(".", 1)[-1]):
                redaction.register_secret(value)


def _assign_request_id() -> None:
    """The caller's X-Request-ID when it is sane, else a new one; kept in g for the logs."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _echo_request_id(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
