"""RFC 9457 problem details: the one error format of the accounting API."""

from flask import jsonify

PROBLEM_TYPES = "https://daystar.co.ke/problems/"


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    errors: dict | None = None,
    type_: str | None = None,
    headers: dict | None = None,
):
    """An `application/problem+json` response; `errors` names each bad field or parameter."""
    body = {"type": PROBLEM_TYPES + (type_ or str(status)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
