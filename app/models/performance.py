"""Performance rollups: per five minutes, series and key, the count and the timing figures of API
requests, M-Pesa callback acknowledgements and jobs, and notifications' outcomes. Written by the
periodic rollup job (app/services/performance.py), read by the Performance page."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only


class PerformanceSeries(StrEnum):
    API_LATENCY = "api_latency"  # key: "GET /api/accounting/v1/loans/<int:loan_id>"
    CALLBACK_ACK = "callback_ack"  # key: the M-Pesa callback kind ("stk", "c2b_confirmation"...)
    JOB_DURATION = "job_duration"  # key: "queue:module.function"
    NOTIFICATION_DELIVERY = "notification_delivery"  # key: "channel/provider"


class PerformanceSample(db.Model):
    """Five minutes (from bucket_start) of one series' key. `count` is the samples timed (requests, callbacks, job runs;
    for notifications, those a provider accepted); `failed` the ones that went wrong (5xx, refused
    callbacks, failed jobs, failed notifications); `delivered` for notifications only. The
    millisecond figures are None where nothing was timed."""

    __tablename__ = "performance_samples"
    __table_args__ = (
        UniqueConstraint("series", "key", "bucket_start", name="uq_performance_samples_bucket"),
        Index("ix_performance_samples_series_bucket", "series", "bucket_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    series: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(200))
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    sum_ms: Mapped[float | None] = mapped_column(Float)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)
    max_ms: Mapped[float | None] = mapped_column(Float)
