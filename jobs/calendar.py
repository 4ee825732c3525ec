"""Business-day arithmetic for ageing and settlement windows (tenant calendar: weekend + holidays)."""
from __future__ import annotations

from datetime import date, timedelta

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class BusinessCalendar:
    def __init__(self, weekend: list[str] | None = None, holidays: list[str] | None = None):
        weekend = weekend if weekend is not None else ["Sat", "Sun"]
        self.weekend = {_DAY_NAMES.index(d) for d in weekend}
        self.holidays = {date.fromisoformat(h) for h in holidays or []}

    def is_business_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and d not in self.holidays

    def add_business_days(self, d: date, n: int) -> date:
        """The n-th business day after ``d`` (n >= 0; n = 0 gives ``d``)."""
        current, remaining = d, n
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_business_day(current):
                remaining -= 1
        return current
