"""Daraja's clock is Nairobi time (EAT, UTC+3): timestamps, receipts and statements use it."""

from datetime import datetime
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def now() -> datetime:
    return datetime.now(NAIROBI)


def compact(at: datetime) -> str:
    """YYYYMMDDHHmmss, the format of Timestamp, TransTime and TransactionDate."""
    return at.strftime("%Y%m%d%H%M%S")
