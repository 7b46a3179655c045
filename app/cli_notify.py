"""`flask --app wsgi notify ...`: message templates and the scheduled reminders."""

import json

import click
from flask.cli import AppGroup

notify_cli = AppGroup("notify", help="Notifications: templates and reminders.")


@notify_cli.command("ensure-templates")
def ensure_templates():
    """Insert the default message templates that are missing (edited ones are kept)."""
    from app.services.notifications import templates

    added = templates.ensure_defaults()
    click.echo(f"{added} default template(s) added." if added else "Every template is present.")


REMINDERS = {
    "repayment-due": "repayment_due",
    "overdue": "overdue",
    "contribution": "contribution",
}


@notify_cli.command("remind")
@click.argument("kind", type=click.Choice(sorted(REMINDERS)))
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Run as on this day (default: today in Nairobi).",
)
def remind(kind, day):
    """Run a reminder now, as its periodic job does (members who had it today are skipped)."""
    from app.services.notifications import reminders

    run = getattr(reminders, REMINDERS[kind])(day.date() if day else None)
    click.echo(
        f"{run.kind} for {run.day}: {run.members} member(s), {run.already} had it already, "
        f"{run.stored} notification(s) stored in {run.seconds:.1f} s."
    )


@notify_cli.command("send")
@click.option("--member-id", type=int, required=True)
@click.option("--channel", type=click.Choice(["sms", "email", "both"]), required=True)
@click.option("--message", required=True)
@click.option("--subject")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default="normal")
def send(member_id, channel, message, subject, priority):
    """Store and enqueue a notification; print its ids as JSON (exit 1 when refused)."""
    from app.services.notifications import gateway

    answer = gateway.send_notification(member_id, message, channel, subject, {"priority": priority})
    click.echo(json.dumps(answer, indent=2))
    if not answer["success"]:
        raise SystemExit(1)


@notify_cli.command("show")
@click.argument("notification_id", type=int)
def show(notification_id):
    """Print a notification with its status and every provider attempt as JSON."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Notification, NotificationAttempt

    row = db.session.get(Notification, notification_id) if notification_id > 0 else None
    if row is None:
        raise click.ClickException(f"There is no notification {notification_id}.")
    fields = (
        "id", "recipient_id", "notification_type", "channel", "provider", "subject", "message",
        "recipient_contact", "status", "skip_reason", "provider_message_id", "sent_at",
        "delivered_at", "failed_at", "retry_count", "max_retries", "priority", "scheduled_for",
        "event_type", "encoding", "segments", "cost", "currency", "created_at",
    )  # fmt: skip
    attempts = db.session.scalars(
        select(NotificationAttempt)
        .where(NotificationAttempt.notification_id == row.id)
        .order_by(NotificationAttempt.id)
    )
    shown = {name: getattr(row, name) for name in fields}
    shown["attempts"] = [
        {"provider": a.provider, "outcome": a.outcome, "detail": a.detail,
         "http_status": a.http_status, "provider_message_id": a.provider_message_id,
         "duration_ms": a.duration_ms, "at": a.created_at}
        for a in attempts
    ]  # fmt: skip
    click.echo(json.dumps(shown, indent=2, default=str))
