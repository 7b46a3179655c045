"""RFC 9457 problem details: the one error format of the accounting API."""

from flask import json, request
from werkzeug.exceptions import HTTPException

from app.services.errors import ServiceError

PROBLEM_TYPES = "https://daystar.co.ke/problems/"
API_PREFIXES = ("/api/accounting/", "/wp-json/daystar-accounting/")


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    errors: dict | None = None,
    type_: str | None = None,
    headers: dict | None = None,
):
    """An `application/problem+json` response; `errors` names each bad field or parameter."""
    from flask import current_app

    body = {"type": PROBLEM_TYPES + (type_ or str(status)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = current_app.response_class(
        json.dumps(body), status=status, mimetype="application/problem+json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES)


HTTP_DETAILS = {
    404: "There is nothing at this address.",
    405: "This address does not answer that method; see the Allow header.",
}


def http_problem(exc: HTTPException):
    """Any HTTP error (404 routing, 405, 413, ...) as a problem, keeping its headers (Allow)."""
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    detail = HTTP_DETAILS.get(exc.code, exc.description)
    return problem(exc.code or 500, exc.name, detail, headers=headers)


def service_problem(exc: ServiceError):
    """A refused service call (NotFound 404, ValidationFailed 422, IllegalTransition 409)."""
    from app.extensions import db

    db.session.rollback()
    titles = {404: "Not found", 409: "Conflict", 422: "Invalid fields"}
    return problem(
        exc.status_code,
        titles.get(exc.status_code, "Bad request"),
        exc.message,
        errors=exc.errors or None,
    )


def unexpected_problem():
    return problem(500, "Internal error", "The error was logged. Please try again.")


def register_problem_handlers(bp) -> None:
    bp.register_error_handler(HTTPException, http_problem)
    bp.register_error_handler(ServiceError, service_problem)
