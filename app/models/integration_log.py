"""One structured log of what the integrations did: the accounting API, M-Pesa, notifications,
webhooks and jobs each write their events here, with the ids that link an entry to the records
involved. Staff read it in Integrations > Logs; the dashboard's activity feed is its `activity`
entries."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class Integration(StrEnum):
    ACCOUNTING_API = "accounting_api"
    MPESA = "mpesa"
    NOTIFICATIONS = "notifications"
    WEBHOOKS = "webhooks"
    JOBS = "jobs"


class LogLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class IntegrationLogEntry(db.Model):
    __tablename__ = "integration_log"
    __table_args__ = (
        Index("ix_integration_log_created", "created_at"),
        Index("ix_integration_log_integration_created", "integration", "created_at"),
        Index("ix_integration_log_level_created", "level", "created_at"),
        Index("ix_integration_log_error_kind", "error_kind", "created_at"),
        Index("ix_integration_log_activity", "activity", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    integration: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(10), default=LogLevel.INFO)
    event: Mapped[str] = mapped_column(String(60))  # "mpesa.callback_held", "webhook.disabled"
    message: Mapped[str] = mapped_column(Text)
    context: Mapped[dict] = mapped_column(JSON, default=dict)  # secrets redacted before storing
    # What errors are grouped by: an exception class or a provider's error code.
    error_kind: Mapped[str | None] = mapped_column(String(120))
    # Shown in the dashboard's recent-activity feed.
    activity: Mapped[bool] = mapped_column(Boolean, default=False)
    # Correlation ids: the web request or job that wrote it, and the records involved.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    mpesa_transaction_id: Mapped[int | None] = mapped_column(Integer, index=True)
    notification_id: Mapped[int | None] = mapped_column(Integer, index=True)
    webhook_delivery_id: Mapped[int | None] = mapped_column(Integer, index=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(Integer)
