"""The accounting API, served at /api/accounting/v1/ and, unchanged, at the previous system's
/wp-json/daystar-accounting/v1/ so that existing integrations keep working.

How to add an endpoint (the OpenAPI document at /api/accounting/v1/openapi.json is built from the
routes of `bp`, so a route declared this way is documented, validated and rendered alike):

    from app.blueprints.api import bp
    from app.blueprints.api.auth import require_permission
    from app.blueprints.api.openapi import operation
    from app.blueprints.api.schemas import ID_MAX, QuerySchema, list_schema  # helpers

    @bp.post("/webhooks")                                 # ids in paths: "/webhooks/<id:webhook_id>"
    @require_permission("manage_webhooks")                # outermost after the route: auth first
    @operation(
        tag="Webhooks",
        summary="Register a webhook endpoint",
        body=WebhookCreate,          # marshmallow Schema class for the JSON body; the view gets
                                     # `body=` (the loaded dict). Bad JSON: 400; invalid: 422
                                     # problem naming each field.
        query=None,                  # Schema class for the query string; the view gets `query=`.
                                     # Bad parameter: 400 problem naming it.
        responses={201: WebhookCreated},  # status -> Schema class (None: no body, e.g. 204)
        errors=(404, 409),           # extra problem statuses this operation can answer
    )
    def create_webhook(body):
        '''One-line guarantee.'''
        endpoint = ...
        return endpoint, 201          # or `obj`, `(obj, status)`, `(obj, status, headers)`:
                                      # dumped with the schema of that status, JSON with Decimal
                                      # money as numbers, ETag/304 on GET. A flask Response
                                      # (e.g. errors.problem(...)) is passed through untouched.

401/403/429 are documented automatically for a view under `require_permission`, 400 for one with
`query`, 400 and 422 for one with `body`, 404 for one with path parameters. Raising
app.services.errors.NotFound / ValidationFailed / IllegalTransition in a view becomes a problem
response (404 / 422 / 409) by the handlers in errors.py.

Ids in paths use the `id` converter (`<id:loan_id>`, see `IdConverter`): digits only, and an id
outside 1..ID_MAX (what the database column holds) is a 404 problem at routing, whatever the
method. Not `<int(min=1, max=...)>`, nor `<int:...>`: werkzeug checks the method before the
converter, so `DELETE /webhooks/0` (or an id of 5,000 digits) would be a 405, which the document
does not state, instead of a 404.
"""

from flask import Blueprint
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from app.extensions import csrf

BASE_PATH = "/api/accounting/v1"
COMPAT_PATH = "/wp-json/daystar-accounting/v1"

from app.services.lookup import ID_MAX  # noqa: E402


class IdConverter(BaseConverter):
    """A record id in a path: 1 to ID_MAX, else 404 (never a 405, never an overflow in SQL)."""

    regex = r"\d{1,19}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= ID_MAX:
            raise NotFound()
        return number

    def to_url(self, value) -> str:
        return str(int(value))


bp = Blueprint("api", __name__)
csrf.exempt(bp)

from app.blueprints.api import errors, openapi, resources, webhooks  # noqa: E402, F401

errors.register_problem_handlers(bp)


def register_api(app) -> None:
    app.url_map.converters["id"] = IdConverter
    app.register_blueprint(bp, url_prefix=BASE_PATH)
    app.register_blueprint(bp, url_prefix=COMPAT_PATH, name="api_compat")
