"""Member messages for outbox events: a new member is welcomed, a loan's application, approval,
decline and disbursement are announced, and repayments and contributions are acknowledged.

The event's own data (its payload, as it was when it happened) fills the template, with a few
details read from the database (the loan product's name, the first due date, savings totals).
Each message's dedupe key is derived from the event id, so an event dispatched twice notifies
once. The channels per kind of message are settings (channels_<template key>); a channel is used
only when the member has that contact."""

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Channel,
    Contribution,
    ContributionKind,
    Event,
    Loan,
    LoanInstallment,
    LoanProduct,
    Member,
    Notification,
    Priority,
)
from app.services import snapshots
from app.services.notifications import config, gateway
from app.services.notifications.templates import Renderer

EVENT_TEMPLATES = {
    "member.created": "welcome",
    "loan.created": "loan_application_received",
    "loan.approved": "loan_approved",
    "loan.declined": "loan_declined",
    "loan.disbursed": "loan_disbursed",
    "repayment.received": "repayment_received",
    "contribution.received": "contribution_received",
}
MONEY_FIELDS = ("amount", "monthly_payment", "total_payable", "paid_amount", "balance")
DATE_FIELDS = ("application_date", "approval_date", "disbursement_date", "due_date", "paid_on")
KIND_LABELS = {ContributionKind.DEPOSIT: "deposit", ContributionKind.SHARE_CAPITAL: "share capital"}


def _typed(data: dict) -> dict:
    """A payload's values as templates get them everywhere: amounts as Decimal, dates as date."""
    out = dict(data)
    for name in MONEY_FIELDS:
        if out.get(name) not in (None, ""):
            out[name] = Decimal(str(out[name]))
    for name in DATE_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = date.fromisoformat(out[name][:10])
    return out


def member_context(member: Member) -> dict:
    return {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "full_name": member.full_name,
        "member_number": member.member_number,
        "phone": member.phone,
        "email": member.email,
    }


def loan_context(data: dict) -> dict:
    """A loan snapshot (an event's payload) with its product's name, the decision's reason, how
    it was disbursed and its first due date."""
    loan = _typed(data)
    row = db.session.get(Loan, int(loan["id"]))
    product = db.session.get(LoanProduct, int(loan["product_id"]))
    first_due = db.session.scalar(
        select(func.min(LoanInstallment.due_date)).where(LoanInstallment.loan_id == loan["id"])
    )
    return {
        "id": loan["id"],
        "amount": loan["amount"],
        "product": product.name if product else "",
        "term_months": loan["term_months"],
        "monthly_payment": loan["monthly_payment"],
        "total_payable": loan["total_payable"],
        "balance": loan["balance"],
        "purpose": loan["purpose"],
        "application_date": loan["application_date"],
        "approval_date": loan["approval_date"],
        "disbursement_date": loan["disbursement_date"],
        "due_date": loan["due_date"],
        "disbursement_method": row.disbursement_method if row else None,
        "decision_reason": row.decision_reason if row else None,
        "first_due_date": first_due,
    }


def _loan_event(payload: dict) -> dict:
    return {"loan": loan_context(payload)}


def _repayment_event(payload: dict) -> dict:
    repayment = _typed(payload)
    loan = db.session.get(Loan, int(repayment["loan_id"]))
    return {
        "repayment": {
            name: repayment[name] for name in ("amount", "reference", "method", "paid_on")
        },
        # The loan as it is now: its balance after this repayment (and any later one).
        "loan": loan_context(snapshots.loan(loan)),
    }


def _contribution_event(payload: dict) -> dict:
    contribution = _typed(payload)
    totals = dict(
        db.session.execute(
            select(Contribution.kind, func.sum(Contribution.amount))
            .where(Contribution.member_id == int(contribution["member_id"]))
            .group_by(Contribution.kind)
        ).all()
    )
    return {
        "contribution": {
            "amount": contribution["amount"],
            "kind": contribution["kind"],
            "kind_label": KIND_LABELS.get(contribution["kind"], contribution["kind"]),
            "reference": contribution["reference"],
            "method": contribution["method"],
            "paid_on": contribution["paid_on"],
        },
        "savings": {
            "deposits": _cents(totals.get(ContributionKind.DEPOSIT)),
            "share_capital": _cents(totals.get(ContributionKind.SHARE_CAPITAL)),
        },
    }


def _cents(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


CONTEXT = {
    "member.created": lambda payload: {},
    "loan.created": _loan_event,
    "loan.approved": _loan_event,
    "loan.declined": _loan_event,
    "loan.disbursed": _loan_event,
    "repayment.received": _repayment_event,
    "contribution.received": _contribution_event,
}


def _member_id(event: Event) -> int | None:
    value = event.payload.get("id" if event.event_type == "member.created" else "member_id")
    return int(value) if value is not None else None


def contact(member: Member, channel: str) -> str | None:
    return member.phone if channel == Channel.SMS else member.email


def notify_for_event(event_id: int) -> list[Notification]:
    """Store and enqueue the member's messages for outbox event `event_id` (none for an event
    that has no message, or when every channel is switched off or lacks a contact). Running it
    again for the same event stores nothing more. Commits."""
    event = db.session.get(Event, event_id)
    if event is None or event.event_type not in EVENT_TEMPLATES:
        return []
    key = EVENT_TEMPLATES[event.event_type]
    member_id = _member_id(event)
    member = db.session.get(Member, member_id) if member_id else None
    if member is None:
        return []
    channels = tuple(c for c in config.current().channels(key) if contact(member, c))
    if not channels:
        return []
    context = {"member": member_context(member), **CONTEXT[event.event_type](event.payload)}
    message = Renderer(key).render(context, channels)
    options = {
        "type": key,
        "template": key,
        "event_type": event.event_type,
        "dedupe_key": f"event:{event.id}",
        "priority": Priority.NORMAL,
    }
    rows = []
    if Channel.SMS in channels and message.sms:
        rows += gateway.create(member.id, message.sms, Channel.SMS, options=options)
    if Channel.EMAIL in channels and message.subject:
        rows += gateway.create(
            member.id,
            message.text,
            Channel.EMAIL,
            message.subject,
            options,
            html_message=message.html,
        )
    return rows
