"""Pagination shared by the list pages: by OFFSET with a total, or by key after a given row."""

from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int
    # Whether a row follows this page, when known from reading one row past it.
    more: bool | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.more if self.more is not None else self.page < self.pages


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def paginate(query, page: int, per_page: int) -> Page:
    """One page of `query` (ordered by the caller) and the total count: two queries."""
    page = max(1, page)
    total = _count(query)
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, page, per_page, total)


def offset_page(query, page: int, per_page: int) -> Page:
    """Like paginate(), and `more` tells whether a row follows (one more row is read): two
    queries."""
    page = max(1, page)
    total = _count(query)
    rows = list(db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)))
    return Page(rows[:per_page], page, per_page, total, more=len(rows) > per_page)


def keyset_page(
    query, column, after, page: int, per_page: int, total: int, descending: bool = False
) -> Page:
    """The `per_page` rows of `query` (ordered by the unique `column`) that come after the value
    `after`, and whether more follow: one query, no COUNT and no OFFSET, as fast at any depth.
    `page` and `total` are the caller's (carried over from the first page)."""
    beyond = column < after if descending else column > after
    rows = list(db.session.scalars(query.where(beyond).limit(per_page + 1)))
    return Page(rows[:per_page], page, per_page, total, more=len(rows) > per_page)
