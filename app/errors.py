"""Error pages: HTML for staff, JSON for machines; never a stack trace."""

import logging

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.htmx import is_htmx
from app.services.errors import ServiceError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.path.startswith(
        ("/api/", "/callbacks/")
    )


def _render(status: int, title: str, message: str):
    if _wants_json():
        return jsonify(error=title, detail=message), status
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def register_error_handlers(app) -> None:
    from app.blueprints.api import errors as api_errors

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if api_errors.is_api_request():  # routing errors (404, 405) never reach the blueprint
            return api_errors.http_problem(exc)
        messages = {
            403: "Your role does not allow this. Ask an administrator if you need it.",
            404: "There is nothing at this address.",
        }
        return _render(exc.code, exc.name, messages.get(exc.code, exc.description))

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        if api_errors.is_api_request():
            return api_errors.service_problem(exc)
        db.session.rollback()
        return _render(exc.status_code, "Not possible", exc.message)

    if app.testing:
        return  # tests see the real traceback

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if api_errors.is_api_request():
            return api_errors.unexpected_problem()
        return _render(500, "Something went wrong", "The error was logged. Please try again.")
