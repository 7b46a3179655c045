"""Template filters: money, dates and times as staff read them (Nairobi time)."""

from datetime import date, datetime
from decimal import Decimal

from app.clock import NAIROBI


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def datefmt(value: date | None) -> str:
    return "" if value is None else value.strftime("%d %b %Y")


def datetimefmt(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(NAIROBI).strftime("%d %b %Y %H:%M")
