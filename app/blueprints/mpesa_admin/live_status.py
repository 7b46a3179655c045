"""The live status of one payment request or disbursement: a small panel the member and loan pages
poll every two seconds until M-Pesa has settled it."""

from flask import request

from app.auth import requires
from app.blueprints.api_admin.common import id_from
from app.blueprints.mpesa_admin import bp
from app.htmx import is_htmx, render_view
from app.models import MpesaStatus, MpesaTransaction
from app.services.mpesa import monitor
from app.services.mpesa.transactions import get_transaction

# While in one of these, the outcome can still change by itself: keep polling.
MOVING = (MpesaStatus.QUEUED, MpesaStatus.PENDING, MpesaStatus.UNKNOWN)
POLL_SECONDS = dict.fromkeys(MOVING, 2) | {MpesaStatus.AWAITING_APPROVAL: 10}


def transaction_id_from(values) -> int:
    """The `transaction_id` of the query string or form; NotFound when it names none."""
    return id_from(values, "transaction_id", "M-Pesa transaction")


def live_context(txn: MpesaTransaction) -> dict:
    """What the live status panel shows of `txn`: itself, how often to poll it (None: settled),
    and who asked for it and who approved it."""
    names = monitor.staff_names(txn.requested_by_id, txn.approved_by_id)
    return {
        "live_txn": txn,
        "poll_seconds": POLL_SECONDS.get(txn.status),
        "requested_by": names.get(txn.requested_by_id),
        "approved_by": names.get(txn.approved_by_id),
    }


@bp.get("/transactions/live")
@requires("read")
def live_status():
    """The transaction's status in words (queued, sent, paid with its receipt, failed with the
    reason). A poll of a settled transaction gets 286, which stops the polling."""
    txn = get_transaction(transaction_id_from(request.args))
    context = live_context(txn)
    response = render_view("mpesa_admin/live.html", "mpesa_admin/_live_status.html", **context)
    if is_htmx() and context["poll_seconds"] is None:
        response.status_code = 286
    return response
