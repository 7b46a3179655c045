"""`flask --app wsgi mpesa ...`: M-Pesa from the command line. The group is importable so that
more commands join it (`from app.cli_mpesa import mpesa_cli`)."""

import json
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import or_, select

from app.extensions import db
from app.models import Loan, Member, MpesaStatus, MpesaTransaction, ReconciliationStatus
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.lookup import ID_MAX
from app.services.mpesa import disbursements, payments, reconciliation

mpesa_cli = AppGroup("mpesa", help="M-Pesa payments, disbursements and reconciliation.")
CLI_ACTOR = Actor.system("cli")


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@mpesa_cli.command("reconcile")
@click.argument("statement", type=click.File("rb"))
def reconcile(statement):
    """Reconcile an organisation portal statement (CSV; '-' reads standard input) against our
    records, now and in this process, and print the report's counts as JSON."""
    data = statement.read(reconciliation.MAX_STATEMENT_BYTES + 1)
    try:
        text = reconciliation.decode_upload(data)
        started = reconciliation.start(Path(statement.name).name, text, CLI_ACTOR, enqueue=False)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    done = reconciliation.run(started.id)
    if done.status != ReconciliationStatus.FINISHED:
        raise click.ClickException(f"Reconciliation {done.id} failed: {done.error}")
    report = {
        "reconciliation_id": done.id,
        "status": done.status,
        "period_start": _iso(done.period_start),
        "period_end": _iso(done.period_end),
        "rows": done.rows_total,
        "counts": done.counts,
    }
    click.echo(json.dumps(report, indent=2))


def _echo_json(value: dict) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@mpesa_cli.command("stk-push")
@click.option("--phone", required=True, help="The member's phone, e.g. 0712345678.")
@click.option("--amount", required=True, help="Whole shillings.")
@click.option("--member-id", type=int, required=True)
@click.option("--purpose", type=click.Choice(["contribution", "loan_repayment"]), required=True)
@click.option("--loan-id", type=int, help="The loan, for a loan repayment.")
@click.option("--kind", type=click.Choice(["deposit", "share_capital"]), default="deposit",
              help="The contribution's kind.")  # fmt: skip
def stk_push(phone, amount, member_id, purpose, loan_id, kind):
    """Send an STK Push now and print its ids as JSON (exit 1 when it was not sent)."""
    member = db.session.get(Member, member_id)
    loan = db.session.get(Loan, loan_id) if loan_id else None
    reference = payments.default_reference(member, loan) if member else ""
    description = "Loan repayment" if purpose == "loan_repayment" else "Contribution"
    answer = payments.initiate_stk_push(
        phone, amount, reference, description[:13], member_id, purpose, loan_id, kind, CLI_ACTOR
    )
    _echo_json(answer | _ids(answer.get("transaction_id")))
    if not answer["success"]:
        raise SystemExit(1)


@mpesa_cli.command("b2c")
@click.option("--loan-id", type=int, required=True)
def b2c(loan_id):
    """Disburse an approved loan to its member's phone now and print the request's ids as JSON
    (exit 1 when it was refused or failed)."""
    try:
        txn = disbursements.request_disbursement(loan_id, CLI_ACTOR)
        if txn.status == MpesaStatus.QUEUED:
            txn = disbursements.send(txn.id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    _echo_json(_ids(txn.id))
    if txn.status == MpesaStatus.FAILED:
        raise SystemExit(1)


@mpesa_cli.command("status")
@click.argument("transaction", metavar="ID")
def status(transaction):
    """Print a transaction as JSON: by our id, checkout request id, conversation id or receipt."""
    txn = monitor_lookup(transaction)
    if txn is None:
        raise click.ClickException(f"No M-Pesa transaction is known as {transaction!r}.")
    _echo_json(_ids(txn.id))


def monitor_lookup(key: str) -> MpesaTransaction | None:
    key = key.strip()
    if key.isdigit() and int(key) <= ID_MAX:
        found = db.session.get(MpesaTransaction, int(key))
        if found is not None:
            return found
    return db.session.scalars(
        select(MpesaTransaction).where(
            or_(
                MpesaTransaction.checkout_request_id == key,
                MpesaTransaction.conversation_id == key,
                MpesaTransaction.originator_conversation_id == key,
                MpesaTransaction.mpesa_receipt_number == key.upper(),
            )
        )
    ).first()


def _ids(transaction_id) -> dict:
    """A transaction's ids, amounts and state, for printing."""
    txn = db.session.get(MpesaTransaction, transaction_id) if transaction_id else None
    if txn is None:
        return {}
    fields = (
        "id", "transaction_type", "status", "merchant_request_id", "checkout_request_id",
        "conversation_id", "originator_conversation_id", "mpesa_receipt_number", "phone_number",
        "amount", "account_reference", "member_id", "loan_id", "payment_purpose", "result_code",
        "result_desc", "verification", "hold_reason", "created_at", "updated_at",
    )  # fmt: skip
    return {"transaction": {name: getattr(txn, name) for name in fields}}
