"""The run's data interval, connector schedules and delivery windows.

An ingest run covers one data interval ``[start, end)`` (one hour for ``ingest_hourly``). Files it
lands get ``received_date = start.date()`` (UTC): never the wall clock, so a rerun of an interval
lands into the same day. A connector is due in a run when its cron schedule (in its time zone) fires
inside the interval. A delivery window says by when (local time) a day's files are expected.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from jobs.ingest.config import Connector, window_of

ONE_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class RunWindow:
    start: datetime           # aware, UTC
    end: datetime             # aware, UTC; > start
    run_id: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("RunWindow needs time-zone-aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"empty data interval {self.start} .. {self.end}")

    @property
    def received_date(self) -> date:
        return self.start.astimezone(timezone.utc).date()

    @classmethod
    def from_interval(cls, start: datetime | None, end: datetime | None, run_id: str) -> "RunWindow":
        """From Airflow's data interval; a point-in-time run (trigger timetables) covers the hour before it."""
        if start is None and end is None:
            raise ValueError("the run has no data interval (trigger it with a logical date)")
        end = end or start + ONE_HOUR
        start = start if start is not None and start < end else end - ONE_HOUR
        return cls(_utc(start), _utc(end), run_id)

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "run_id": self.run_id}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> "RunWindow":
        return cls(datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"]), d["run_id"])


def _utc(dt: datetime) -> datetime:
    return datetime.fromtimestamp(dt.timestamp(), tz=timezone.utc)


def is_due(connector: Connector, window: RunWindow) -> bool:
    """Does the connector's cron schedule fire within [window.start, window.end)?"""
    from croniter import croniter

    tz = ZoneInfo(connector.config["timezone"])
    just_before = window.start.astimezone(tz) - timedelta(microseconds=1)
    next_fire = croniter(connector.config["schedule"], just_before).get_next(datetime)
    return next_fire < window.end.astimezone(tz)


def delivery_deadline(connector: Connector, day: date) -> datetime | None:
    """When the files of ``day`` must have arrived (aware), or None (no window, or not a delivery day)."""
    window = window_of(connector)
    if window is None:
        return None
    expected_by, _, weekdays = window
    if day.isoweekday() not in weekdays:
        return None
    return datetime.combine(day, expected_by, tzinfo=ZoneInfo(connector.config["timezone"]))
