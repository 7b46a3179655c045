"""Moving an M-Pesa transaction between statuses: forward only, atomically, in the caller's
transaction (the caller commits)."""

from sqlalchemy import select, update

from app.extensions import db
from app.models import MpesaStatus, MpesaTransaction
from app.models.base import utcnow
from app.services.lookup import get_or_not_found


def get_transaction(transaction_id) -> MpesaTransaction:
    return get_or_not_found(MpesaTransaction, transaction_id, "M-Pesa transaction")


def move(txn_id: int, allowed: tuple[MpesaStatus, ...], status: MpesaStatus, /, **values) -> bool:
    """Set `status` (and `values`) if the transaction is still in one of `allowed`; False when
    another callback, job or person got there first. Two movers of one row never both win."""
    moved = db.session.execute(
        update(MpesaTransaction)
        .where(MpesaTransaction.id == txn_id, MpesaTransaction.status.in_(allowed))
        .values(status=status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return moved == 1


def locked(transaction_id: int) -> MpesaTransaction:
    """The row, re-read and locked for update (PostgreSQL) so its status is current."""
    return db.session.scalars(
        select(MpesaTransaction)
        .where(MpesaTransaction.id == transaction_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def find_locked(**criteria) -> MpesaTransaction | None:
    """The transaction with these column values, locked for update (PostgreSQL)."""
    query = select(MpesaTransaction)
    for name, value in criteria.items():
        query = query.where(getattr(MpesaTransaction, name) == value)
    return db.session.scalars(query.with_for_update()).first()
