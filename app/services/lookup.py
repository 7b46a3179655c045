"""Finding a record by an id that came from outside."""

from app.extensions import db
from app.services.errors import NotFound

ID_MAX = 2**31 - 1  # what an INTEGER key column holds: a larger number names no record


def get_or_not_found(model, record_id, message: str):
    """The record, or NotFound(message) — also for ids no id column can hold (never an overflow)."""
    in_range = isinstance(record_id, int) and 1 <= record_id <= ID_MAX
    record = db.session.get(model, record_id) if in_range else None
    if record is None:
        raise NotFound(message)
    return record
