"""Declared operations and the OpenAPI 3 document built from them.

`operation(...)` (example in `app/blueprints/api/__init__.py`) validates the query string and JSON
body with marshmallow schemas, renders the view's result with the response schema, and records all
of it on the view; `build_spec()` walks the routes of the `api` blueprint and turns those records
into the document served at /openapi.json. A route without `operation` is not documented.
"""

import re
from dataclasses import dataclass, field
from functools import wraps

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Response, current_app, render_template, request
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError
from werkzeug.routing import IntegerConverter

from app.blueprints.api import BASE_PATH, COMPAT_PATH, ID_MAX, IdConverter, bp
from app.blueprints.api.dump import Dumper
from app.blueprints.api.errors import problem
from app.blueprints.api.render import json_response
from app.blueprints.api.schemas import Problem

SPEC_VERSION = "1.0.0"
SWAGGER_UI = "5.35.0"  # the vendored swagger-ui-dist (scripts/vendor.sh)
TAG_ORDER = ("Loans", "Repayments", "Contributions", "Members", "Reports", "Events", "Webhooks")

ERROR_TITLES = {
    400: "A query parameter (or the JSON body) is malformed or out of range; `errors` names each.",
    401: "The API key is missing, unknown, revoked or expired.",
    403: "The API key lacks the permission this operation needs (named in `detail`).",
    404: "No such record.",
    409: "The record's state does not allow this.",
    422: "A field of the JSON body is invalid; `errors` names each.",
    429: "Too many requests for this key; retry after `Retry-After` seconds.",
}


@dataclass
class Operation:
    summary: str
    tag: str
    description: str | None = None
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    responses: dict = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    csv: bool = False
    link_header: bool = False


def refuse_nul_characters(data, path: str = "") -> None:
    """ValidationError naming each string that holds a NUL character (PostgreSQL cannot store
    one, and no field of ours has a use for it)."""
    bad: dict = {}
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for name, value in items:
        where = f"{path}.{name}" if path else str(name)
        if isinstance(value, str) and "\x00" in value:
            bad[where] = ["Text may not contain NUL characters."]
        elif isinstance(value, dict | list):
            try:
                refuse_nul_characters(value, where)
            except ValidationError as exc:
                bad.update(exc.messages)
    if bad:
        raise ValidationError(bad)


def operation(
    *,
    summary: str,
    tag: str,
    description: str | None = None,
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    responses: dict,
    errors: tuple[int, ...] = (),
    csv: bool = False,
    link_header: bool = False,
):
    """Declare a documented operation: validate `query`/`body`, render `responses` (see module doc).
    `csv=True` documents the text/csv answer to `format=csv`; `link_header` the paging Link header.
    """
    spec = Operation(summary, tag, description, query, body, responses, errors, csv, link_header)
    loaders = {mode: query(unknown=mode) for mode in (RAISE, EXCLUDE)} if query else {}
    dumpers = {status: Dumper(schema()) for status, schema in responses.items() if schema}
    body_loader = body() if body else None

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if loaders:
                strict = request.blueprint != "api_compat"
                try:
                    kwargs["query"] = loaders[RAISE if strict else EXCLUDE].load(
                        request.args.to_dict(flat=True)
                    )
                except ValidationError as exc:
                    return problem(
                        400,
                        "Bad query parameter",
                        "Some query parameters are not valid; see errors.",
                        errors=flatten_errors(exc.messages),
                        type_="invalid-parameters",
                    )
            if body_loader is not None:
                data = request.get_json(silent=True)
                if not isinstance(data, dict):
                    return problem(
                        400,
                        "Bad request body",
                        "Send a JSON object with Content-Type: application/json.",
                        type_="malformed-body",
                    )
                try:
                    refuse_nul_characters(data)
                    kwargs["body"] = body_loader.load(data)
                except ValidationError as exc:
                    return problem(
                        422,
                        "Invalid fields",
                        "Some fields are not valid; see errors.",
                        errors=flatten_errors(exc.messages),
                        type_="invalid-fields",
                    )
            return _render(view(*args, **kwargs), dumpers)

        wrapped.api_operation = spec
        return wrapped

    return decorator


def _render(result, dumpers: dict) -> Response:
    if isinstance(result, Response):
        return result
    status, headers = 200, None
    if isinstance(result, tuple):
        result, status, *rest = result
        headers = rest[0] if rest else None
    schema = dumpers.get(status)
    if schema is None:
        return Response(status=status, headers=headers)
    return json_response(schema.dump(result), status, headers)


def flatten_errors(messages, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested error messages as {"field" or "field.0.sub": "the messages"}."""
    if isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": " ".join(messages)}
    if isinstance(messages, str):
        return {prefix or "_schema": messages}
    flat = {}
    for key, value in messages.items():
        name = "Unknown parameter or field." if value == ["Unknown field."] else None
        path = f"{prefix}.{key}" if prefix else str(key)
        flat.update({path: name} if name else flatten_errors(value, path))
    return flat


# ----- the document -------------------------------------------------------------------------

_RULE_ARG = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def build_spec(app) -> dict:
    """The OpenAPI 3.0 document of every declared operation of the `api` blueprint."""
    spec = APISpec(
        title="Daystar SACCO Accounting API",
        version=SPEC_VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "Read access to the SACCO's loans, repayments, contributions and members, a "
                "financial summary, the event feed and webhooks. Authenticate with "
                "`Authorization: Bearer <key>`. The same operations answer under "
                f"`{COMPAT_PATH}` for integrations written for the previous system (there, "
                "unknown query parameters are ignored; here they are a 400). Money is a JSON "
                "number with two decimals. Errors are RFC 9457 `application/problem+json`."
            )
        },
        servers=[
            {"url": BASE_PATH},
            {"url": COMPAT_PATH, "description": "The previous system's path (compatibility)."},
        ],
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=Problem)
    tags = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith(f"{bp.name}."):
            continue
        view = app.view_functions[rule.endpoint]
        op = getattr(view, "api_operation", None)
        if op is None:
            continue
        tags.add(op.tag)
        path = _RULE_ARG.sub(r"{\1}", rule.rule.removeprefix(BASE_PATH))
        operations = {
            method.lower(): _operation_doc(rule, view, op)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        }
        spec.path(path=path, operations=operations)
    for tag in sorted(tags, key=lambda t: TAG_ORDER.index(t) if t in TAG_ORDER else 99):
        spec.tag({"name": tag})
    return spec.to_dict()


def _path_parameters(rule) -> list[dict]:
    params = []
    for name in _RULE_ARG.findall(rule.rule):
        converter = rule._converters.get(name)
        schema = {"type": "string"}
        if isinstance(converter, IdConverter):
            schema = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
        elif isinstance(converter, IntegerConverter):
            schema = {"type": "integer"}
            if converter.min is not None:
                schema["minimum"] = converter.min
            if converter.max is not None:
                schema["maximum"] = converter.max
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
    return params


def _operation_doc(rule, view, op: Operation) -> dict:
    permission = getattr(view, "required_api_permission", None)
    description = op.description or ""
    if permission:
        description = f"{description}\n\nRequires the `{permission}` permission.".strip()
    parameters = _path_parameters(rule)
    if op.query:
        parameters.append({"in": "query", "schema": op.query})
    doc = {
        "operationId": rule.endpoint.split(".", 1)[1],
        "summary": op.summary,
        "description": description,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": {},
    }
    if permission:
        doc["security"] = [{"bearerAuth": []}]
    if op.body:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": op.body}},
        }
    is_get = "GET" in rule.methods
    for status, schema in op.responses.items():
        doc["responses"][str(status)] = _success(status, schema, op, is_get)
    if is_get:
        doc["responses"]["304"] = {
            "description": "Not modified: the `If-None-Match` ETag still matches.",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        }
    errors = set(op.errors)
    if op.query:
        errors.add(400)
    if op.body:
        errors |= {400, 422}
    if permission:
        errors |= {401, 403, 429}
    if "{" in _RULE_ARG.sub(r"{\1}", rule.rule):
        errors.add(404)
    for status in sorted(errors):
        doc["responses"][str(status)] = _problem_response(status)
    return doc


def _success(status: int, schema, op: Operation, is_get: bool) -> dict:
    response = {"description": op.summary}
    if schema is None:
        return response
    response["content"] = {"application/json": {"schema": schema}}
    headers = {}
    if is_get:
        headers["ETag"] = {"description": "Send as If-None-Match.", "schema": {"type": "string"}}
    if op.link_header:
        headers["Link"] = {
            "description": 'RFC 8288 links: rel="first", "prev" and "last" by `page`; '
            'rel="next", present when more records follow, by `cursor` (with the same filters '
            "and `per_page`). Follow next to read a whole list once, in order.",
            "schema": {"type": "string"},
        }
    if op.csv:
        response["content"]["text/csv"] = {
            "schema": {"type": "string"},
            "example": "id,amount\n1,50000.00\n",
        }
    if headers:
        response["headers"] = headers
    return response


def _problem_response(status: int) -> dict:
    response = {
        "description": ERROR_TITLES.get(status, "Problem"),
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return response


def spec_document() -> dict:
    """The document, built once per app (routes do not change after start-up)."""
    cached = current_app.extensions.get("daystar_openapi")
    if cached is None:
        cached = current_app.extensions["daystar_openapi"] = build_spec(current_app)
    return cached


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 document of this API; public, like the docs page."""
    return json_response(spec_document())


@bp.get("/docs")
def docs():
    """A readable page of the OpenAPI document (Swagger UI, vendored)."""
    return render_template("api/docs.html", swagger_ui=SWAGGER_UI)
