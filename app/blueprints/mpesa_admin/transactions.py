"""The transaction monitor: every M-Pesa request and payment with filters, refreshed while the
page is open; one transaction's timeline with its callbacks; asking M-Pesa about an open one; and
the second approval of a large disbursement."""

from flask import flash, request

from app.auth import current_actor, requires
from app.blueprints.mpesa_admin import bp
from app.blueprints.mpesa_admin.live_status import live_context, transaction_id_from
from app.blueprints.mpesa_admin.refusals import refused
from app.blueprints.mpesa_admin.transaction_forms import (
    TYPE_LABELS,
    RefuseForm,
    TransactionFilterForm,
)
from app.htmx import render_view
from app.models import CallbackState, MpesaStatus, MpesaType
from app.services.errors import NotFound, ServiceError, ValidationFailed
from app.services.mpesa import disbursements, monitor, status
from app.services.pagination import paginate

PER_PAGE = 50
MAX_PAGE = 100_000  # far beyond any real list; keeps the OFFSET a sane integer
REFRESH_SECONDS = 5
QUERYABLE = (MpesaStatus.PENDING, MpesaStatus.UNKNOWN)


@bp.get("/transactions")
@requires("read")
def transactions():
    """Transactions, newest first, filtered by type, status, dates, phone, receipt and member;
    the results refresh every few seconds while the page is open. Bad filters are shown (422)."""
    form = TransactionFilterForm(formdata=request.args)
    context = {"tab": "transactions", "form": form, "filters": form.query_values()}
    if not form.validate():
        return render_view(
            "mpesa_admin/transactions.html",
            "mpesa_admin/_transactions.html",
            422,
            results=None,
            **context,
        )
    page = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    results = paginate(monitor.transactions_query(form.checked()), page, PER_PAGE)
    return render_view(
        "mpesa_admin/transactions.html",
        "mpesa_admin/_transactions.html",
        results=results,
        type_labels=TYPE_LABELS,
        refresh_seconds=REFRESH_SECONDS,
        **context,
    )


def _timeline(txn, callbacks) -> list[dict]:
    """The request's life in time order: what people and jobs did (the audit log), each callback
    as it arrived, and the settlement."""
    events = [
        {"at": txn.created_at, "kind": "created", "title": "Recorded", "entry": None},
    ]
    for entry in monitor.audit_trail(txn.id):
        events.append(
            {"at": entry.created_at, "kind": "audit", "title": entry.action, "entry": entry}
        )
    for callback in callbacks:
        events.append(
            {"at": callback.received_at, "kind": "callback", "title": callback.kind,
             "callback": callback}
        )  # fmt: skip
    if txn.completed_at:
        events.append({"at": txn.completed_at, "kind": "completed", "title": "Completed"})
    order = {"created": 0, "audit": 1, "callback": 2, "completed": 3}
    return sorted(events, key=lambda e: (e["at"], order[e["kind"]]))


def _detail_view(transaction_id: int, status_code: int = 200, /, **context):
    """One transaction with every field, its timeline and the actions the role allows."""
    txn = monitor.transaction_detail(transaction_id)
    if txn is None:
        raise NotFound("There is no such M-Pesa transaction.")
    callbacks = list(txn.callbacks) + monitor.waiting_callbacks(txn)
    context.setdefault("refuse_form", RefuseForm(formdata=None))
    return render_view(
        "mpesa_admin/transaction.html",
        "mpesa_admin/_transaction.html",
        status_code,
        tab="transactions",
        txn=txn,
        timeline=_timeline(txn, callbacks),
        callbacks=callbacks,
        queryable=txn.status in QUERYABLE,
        type_labels=TYPE_LABELS,
        awaiting_approval=txn.transaction_type == MpesaType.B2C
        and txn.status == MpesaStatus.AWAITING_APPROVAL,
        **live_context(txn),
        **context,
    )


@bp.get("/transactions/detail")
@requires("read")
def transaction():
    """A transaction: all its fields, the timeline of the request and of every callback (raw body,
    headers, state, outcome), and the query-status and approval buttons where they apply."""
    return _detail_view(transaction_id_from(request.args))


@bp.post("/transactions/query-status")
@requires("record_payments")
def query_status():
    """Ask M-Pesa now about a pending or unknown transaction (STK Query, or Transaction Status for
    a disbursement, whose answer comes by callback); the answer in words."""
    transaction_id = transaction_id_from(request.form)
    try:
        outcome = status.query_status(transaction_id, current_actor())
    except ServiceError as exc:
        return refused(exc)
    except (ValueError, OSError) as exc:
        # The client is built from the settings; a credential that cannot be made says why.
        return refused(ServiceError(f"The M-Pesa settings cannot be used: {exc}"))
    flash(outcome.words, "success" if outcome.state == CallbackState.PROCESSED else "info")
    return _detail_view(transaction_id)


@bp.post("/transactions/approve")
@requires("manage_loans")
def approve_disbursement():
    """The second staff member's approval of a disbursement; it is sent at once. The person who
    asked for it is refused (409)."""
    transaction_id = transaction_id_from(request.form)
    try:
        txn = disbursements.approve(transaction_id, current_actor())
    except ServiceError as exc:
        return refused(exc)
    flash(
        f"Disbursement of KES {txn.amount:,.2f} to {txn.phone_number} approved; it is being sent.",
        "success",
    )
    return _detail_view(transaction_id)


@bp.post("/transactions/refuse")
@requires("manage_loans")
def refuse_disbursement():
    """Refuse a disbursement waiting for approval, with a reason; the loan stays approved."""
    transaction_id = transaction_id_from(request.form)
    form = RefuseForm()
    try:
        disbursements.reject(transaction_id, current_actor(), form.reason.data)
    except ValidationFailed as exc:
        form.show_errors(exc.errors)
        return _detail_view(transaction_id, 422, refuse_form=form)
    except ServiceError as exc:
        return refused(exc)
    flash("Disbursement refused; the loan stays approved.", "success")
    return _detail_view(transaction_id)
