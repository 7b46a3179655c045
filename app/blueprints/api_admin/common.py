"""Helpers shared by the Accounting API pages: ids read from the query or form, paging, and the
one-time display of a secret."""

from dataclasses import dataclass
from datetime import datetime

from flask import request

from app.htmx import is_htmx
from app.services.errors import NotFound
from app.services.lookup import ID_MAX

MAX_PAGE = 100_000  # far beyond any real list; keeps the OFFSET a sane integer


def id_from(values, name: str, what: str) -> int:
    """The id `name` from the query string or form (`values`); NotFound naming `what` when it is
    missing, not a number, or out of range."""
    raw = (values.get(name) or "").strip()
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= ID_MAX:
        return int(raw)
    raise NotFound(f"There is no {what} {raw[:20]}." if raw else f"Say which {what}.")


def page_number() -> int:
    return min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)


@dataclass(frozen=True)
class Revealed:
    """A secret shown once, in the response that created it; never flashed, stored or logged."""

    title: str
    secret: str
    label: str  # what the secret is, for the copy field's accessible name
    note: str = ""
    old_prefix: str | None = None
    grace_until: datetime | None = None


def show_once(response, target: str):
    """The response that carries a secret: never cached, and for htmx swapped over `target`
    whichever form sent it."""
    response.headers["Cache-Control"] = "no-store"
    if is_htmx():
        response.headers["HX-Retarget"] = target
        response.headers["HX-Reswap"] = "outerHTML"
    return response
