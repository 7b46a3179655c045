"""Paging of the API's lists.

`page`/`per_page` work as in the previous system: OFFSET, and a COUNT of the whole selection on
every page. A synchronisation that follows the `Link: rel="next"` URL instead gets an opaque
`cursor` there: it holds the id of the last row sent, the number of the next page and the total
counted on the first page, so the following pages run `WHERE id > :after ORDER BY id LIMIT n`
(one index range at any depth) and no COUNT. The cursor is signed with the app's SECRET_KEY and
bound to the list, its filters and its page size; a tampered, malformed or foreign cursor is a
400 naming `cursor`.
"""

import hashlib
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from app.blueprints.api import ID_MAX
from app.blueprints.api.errors import problem
from app.blueprints.api.render import link_header
from app.services.pagination import Page, keyset_page, offset_page

CURSOR_SALT = "daystar-api-list-cursor"
PAGING_PARAMETERS = ("page", "per_page", "format", "cursor")
TOTAL_MAX = 2**63 - 1


@dataclass(frozen=True)
class Cursor:
    after: int  # the id of the last record sent
    page: int  # the number of the page it opens
    total: int  # counted on the first page
    scope: str  # what it was issued for: see scope_of()


class InvalidCursor(ValueError):
    pass


def scope_of(key: str, per_page: int, filters: dict) -> str:
    """A digest of the list, its filters and its page size: a cursor is valid for these only."""
    canonical = repr((key, per_page, sorted((name, str(value)) for name, value in filters.items())))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=CURSOR_SALT)


def encode(cursor: Cursor) -> str:
    """The signed, URL-safe token of `cursor`."""
    return _serializer().dumps([cursor.after, cursor.page, cursor.total, cursor.scope])


def _bounded(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def decode(token: str, scope: str) -> Cursor:
    """The cursor `token` holds; InvalidCursor when its signature or shape is wrong, or when it
    was issued for another list, other filters or another page size."""
    try:
        payload = _serializer().loads(token)
    except (BadData, ValueError, TypeError) as exc:
        raise InvalidCursor(
            "Not a cursor this API issued: copy it unchanged from the Link header."
        ) from exc
    if not (
        isinstance(payload, list)
        and len(payload) == 4
        and _bounded(payload[0], 1, ID_MAX)
        and _bounded(payload[1], 2, ID_MAX)
        and _bounded(payload[2], 0, TOTAL_MAX)
        and isinstance(payload[3], str)
    ):
        raise InvalidCursor("Not a cursor this API issued: copy it unchanged from the Link header.")
    cursor = Cursor(*payload)
    if cursor.scope != scope:
        raise InvalidCursor(
            "This cursor was issued for another list, other filters or another per_page: follow "
            "the Link header's URL as it is, or start again from page 1."
        )
    return cursor


def filters_of(query: dict) -> dict:
    """The loaded query string without its paging parameters."""
    return {name: value for name, value in query.items() if name not in PAGING_PARAMETERS}


def paged(
    key: str,
    selection,
    column,
    query: dict,
    descending: bool = False,
    bound_to: dict | None = None,
):
    """A page of `selection` (ordered by `column`, a unique id, ascending unless `descending`) in
    the previous system's envelope `{key: [...], "pagination": {...}}`, with a Link header whose
    rel="next" carries a cursor bound to the filters (and `bound_to`, e.g. path parameters); or a
    400 problem naming `cursor`."""
    per_page = query["per_page"]
    scope = scope_of(key, per_page, {**filters_of(query), **(bound_to or {})})
    if "cursor" in query:
        try:
            cursor = decode(query["cursor"], scope)
        except InvalidCursor as exc:
            return problem(
                400,
                "Bad query parameter",
                "Some query parameters are not valid; see errors.",
                errors={"cursor": str(exc)},
                type_="invalid-parameters",
            )
        page = keyset_page(
            selection, column, cursor.after, cursor.page, per_page, cursor.total, descending
        )
    else:
        page = offset_page(selection, query["page"], per_page)
    return _envelope(key, page, column, scope)


def _envelope(key: str, page: Page, column, scope: str):
    next_cursor = None
    if page.has_next and page.items:
        last = getattr(page.items[-1], column.key)
        next_cursor = encode(Cursor(last, page.page + 1, page.total, scope))
    body = {
        key: page.items,
        "pagination": {
            "page": page.page,
            "per_page": page.per_page,
            "total_items": page.total,
            "total_pages": page.pages,
        },
    }
    return body, 200, {"Link": link_header(page.page, page.pages, next_cursor)}
