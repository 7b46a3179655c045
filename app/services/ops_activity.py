"""The dashboard's recent-activity feed: the integration log's `activity` entries (money in or
out, keys created, webhook endpoints disabled, reconciliations finished, notifications failed...),
newest first, each with the page of the record it names. Reads only."""

from dataclasses import dataclass, field

from sqlalchemy import select, true

from app.extensions import db
from app.models import Integration, IntegrationLogEntry

FEED_SIZE = 20

INTEGRATION_LABELS = {
    Integration.ACCOUNTING_API: "Accounting API",
    Integration.MPESA: "M-Pesa",
    Integration.NOTIFICATIONS: "Notifications",
    Integration.WEBHOOKS: "Webhooks",
    Integration.JOBS: "Jobs",
}


@dataclass(frozen=True)
class Link:
    """Where an entry's record is shown: an endpoint, its query parameters and an anchor."""

    endpoint: str
    label: str
    params: dict = field(default_factory=dict)
    anchor: str | None = None


# Audit target types (the entry's context "target") whose records have a page; with the record's
# id in the context ("target_id") the link goes to the record itself, else to the list.
TARGET_PAGES = {
    "webhook_endpoint": ("api_admin.webhooks", "webhook endpoints", None, None),
    "mpesa_reconciliation": (
        "mpesa_admin.reconciliation_index",
        "reconciliation",
        "mpesa_admin.reconciliation_report",
        "reconciliation_id",
    ),
    "mpesa_suspense_item": ("mpesa_admin.suspense_index", "suspense", None, None),
    "broadcast": ("notify_admin.broadcasts", "broadcast", "notify_admin.broadcast", "broadcast_id"),
}
SETTINGS_PAGES = {
    Integration.MPESA: "mpesa_admin.settings",
    Integration.NOTIFICATIONS: "notify_admin.settings",
}


def recent(limit: int = FEED_SIZE) -> list[IntegrationLogEntry]:
    """The newest `limit` activity entries (a backward read of the (activity, created_at)
    index)."""
    return list(
        db.session.scalars(
            select(IntegrationLogEntry)
            .where(IntegrationLogEntry.activity == true())
            .order_by(IntegrationLogEntry.created_at.desc())
            .limit(limit)
        )
    )


def link_for(entry: IntegrationLogEntry) -> Link | None:
    """The page of the record the entry names, the most specific first: an M-Pesa transaction,
    a notification, a webhook delivery, an API key, an audited record, a member."""
    if entry.mpesa_transaction_id:
        return Link(
            "mpesa_admin.transaction",
            "transaction",
            {"transaction_id": entry.mpesa_transaction_id},
        )
    if entry.notification_id:
        return Link(
            "notify_admin.log_notification",
            "notification",
            {"notification_id": entry.notification_id},
        )
    if entry.webhook_delivery_id:
        return Link(
            "api_admin.delivery_attempts", "delivery", {"delivery_id": entry.webhook_delivery_id}
        )
    if entry.api_key_id:
        return Link("api_admin.index", "API key", anchor=f"key-{entry.api_key_id}")
    context = entry.context or {}
    target = context.get("target")
    if target in TARGET_PAGES:
        list_endpoint, label, record_endpoint, id_param = TARGET_PAGES[target]
        target_id = context.get("target_id")
        if record_endpoint and isinstance(target_id, int):
            return Link(record_endpoint, label, {id_param: target_id})
        return Link(list_endpoint, label)
    if target == "settings" and entry.integration in SETTINGS_PAGES:
        return Link(SETTINGS_PAGES[entry.integration], "settings")
    if entry.member_id:
        return Link("members.detail", "member", {"member_id": entry.member_id})
    return None
