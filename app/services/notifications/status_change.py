"""Moving a notification's status: one UPDATE built once with bound parameters (bulk sends and
delivery reports run it for every message), which changes the row only while its status is still
one the caller expects, so that two writers cannot both move it."""

from sqlalchemy import bindparam, update

from app.extensions import db
from app.models import Notification
from app.models.base import utcnow

NOTIFICATIONS = Notification.__table__
# SET takes the columns of the parameters given.
MOVE = update(NOTIFICATIONS).where(
    NOTIFICATIONS.c.id == bindparam("row_id"),
    NOTIFICATIONS.c.status.in_(bindparam("allowed", expanding=True)),
)


def move(row_id: int, allowed: tuple, **values) -> bool:
    """Change the notification if its status is one of `allowed`; whether it did."""
    parameters = {"row_id": row_id, "allowed": [str(status) for status in allowed]}
    moved = db.session.execute(MOVE, {**parameters, "updated_at": utcnow(), **values}).rowcount
    return moved == 1
