"""Response bodies of the accounting API: JSON with exact money, ETags, Link headers, CSV streams."""

import csv
import hashlib
import io
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlencode

import simplejson
from flask import Response, request, stream_with_context


def dumps(data) -> str:
    """JSON text; Decimal is written as a number digit for digit, never through float."""
    return simplejson.dumps(data, use_decimal=True, ensure_ascii=False, default=_plain)


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(data, status: int = 200, headers=None) -> Response:
    """A JSON response; on GET/HEAD it carries a strong ETag of the body and answers a matching
    If-None-Match with 304."""
    response = Response(dumps(data), status=status, headers=headers, mimetype="application/json")
    if request.method in ("GET", "HEAD") and status == 200:
        response.add_etag()
        response.make_conditional(request)
    return response


def link_header(page: int, pages: int, next_cursor: str | None = None) -> str:
    """RFC 8288 links, keeping the other parameters: the first, previous and last pages by
    number, and the next page, when there is one, by `next_cursor` (see api.paging)."""
    args = request.args.to_dict(flat=True)
    by_number = {name: value for name, value in args.items() if name != "cursor"}
    by_cursor = {name: value for name, value in args.items() if name != "page"}

    def url(params: dict) -> str:
        return f"{request.base_url}?{urlencode(params)}"

    links = [(url({**by_number, "page": 1}), "first")]
    if page > 1:
        links.append((url({**by_number, "page": min(page - 1, pages)}), "prev"))
    if next_cursor is not None:
        links.append((url({**by_cursor, "cursor": next_cursor}), "next"))
    links.append((url({**by_number, "page": pages}), "last"))
    return ", ".join(f'<{target}>; rel="{rel}"' for target, rel in links)


# ----- CSV ----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A CSV cell: money with two decimals, ISO dates, and free text that a spreadsheet would run
    as a formula (starting = + - @) prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_response(
    columns: tuple[str, ...],
    rows: Iterable,
    row_values: Callable,
    etag: str,
    filename: str,
) -> Response:
    """A text/csv response streamed row by row from `rows` (never held in memory), with a weak
    ETag computed by the caller; a matching If-None-Match gets 304 before any row is read."""
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
        response.set_etag(etag, weak=True)
        return response

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(v) for v in row_values(row)])
            if buffer.tell() > 16_384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.set_etag(etag, weak=True)
    return response


def weak_etag(*parts) -> str:
    """An ETag value derived from the request's filters and the data's fingerprint."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
