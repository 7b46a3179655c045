"""A service's refusal of a button's action, answered as a 4xx with its message."""

from flask import make_response, render_template

from app.extensions import db
from app.htmx import is_htmx
from app.services.errors import ServiceError, ValidationFailed


def refusal_words(exc: ServiceError) -> str:
    """The message to show: a ValidationFailed's field messages read as sentences."""
    if isinstance(exc, ValidationFailed):
        return " ".join(exc.errors.values())
    return exc.message


def refused(exc: ServiceError):
    """The refusal as the error box at the service's status. For htmx it goes to the flash
    area whatever the button's target, so the panel the button is in stays as it was."""
    db.session.rollback()
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    body = render_template(
        template, status=exc.status_code, title="Not possible", message=refusal_words(exc)
    )
    response = make_response(body, exc.status_code)
    response.vary.add("HX-Request")
    if is_htmx():
        # htmx swaps a 422 (it is how a form comes back); other 4xx reach #flash via app.js.
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response
