"""The SACCO's calendar: "today" is the date in Nairobi, whatever the server's time zone."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def today() -> date:
    return datetime.now(NAIROBI).date()
