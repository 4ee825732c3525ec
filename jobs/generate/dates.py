"""Vectorised calendar arithmetic: epoch days, Mon-Fri business days, CET/CEST, timestamp text.

Instants are int64 seconds since 1970-01-01 UTC; dates are int epoch days. "N business days after
D" is the N-th Monday-Friday strictly after D (``numpy.busday_offset(D, N, roll='backward')``), so a
Saturday + 1 is the next Monday.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from jobs.generate.text import from_matrix, put_digits

EPOCH = date(1970, 1, 1)
DAY = 86_400


def day_of(d: date) -> int:
    return (d - EPOCH).days


def to_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def add_business_days(days, n: int):
    """The n-th Mon-Fri day strictly after each day (n >= 1); int or int array in, same out."""
    arr = np.asarray(days, dtype="int64").astype("datetime64[D]")
    out = np.busday_offset(arr, n, roll="backward").astype("int64")
    return int(out) if np.ndim(days) == 0 else out


def add_business_days_var(days: np.ndarray, n: np.ndarray) -> np.ndarray:
    arr = np.asarray(days, dtype="int64").astype("datetime64[D]")
    return np.busday_offset(arr, np.asarray(n, dtype="int64"), roll="backward").astype("int64")


def is_business_day(day: int) -> bool:
    return bool(np.is_busday(np.datetime64(int(day), "D")))


def same_day_later(t: np.ndarray, seconds) -> np.ndarray:
    """t + seconds, but not past the end of t's UTC day (so a PSP event keeps the book record's day)."""
    t = np.asarray(t, dtype=np.int64)
    return np.minimum(t + seconds, (t // DAY + 1) * DAY - 1)


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch days -> (year, month, day) arrays (H. Hinnant's civil_from_days)."""
    z = np.asarray(days, dtype=np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def _date_into(mat: np.ndarray, days: np.ndarray) -> None:
    y, m, d = civil(days)
    put_digits(mat, 0, y, 4)
    mat[:, 4] = ord("-")
    put_digits(mat, 5, m, 2)
    mat[:, 7] = ord("-")
    put_digits(mat, 8, d, 2)


def fmt_day(days: np.ndarray):
    """'YYYY-MM-DD' strings."""
    days = np.asarray(days, dtype=np.int64)
    mat = np.empty((len(days), 10), dtype=np.uint8)
    _date_into(mat, days)
    return from_matrix(mat)


def fmt_ts(t: np.ndarray, sep: str = " "):
    """'YYYY-MM-DD HH:MM:SS' (or with 'T') for int64 epoch seconds, as wall-clock text."""
    t = np.asarray(t, dtype=np.int64)
    days, secs = np.divmod(t, DAY)
    mat = np.empty((len(t), 19), dtype=np.uint8)
    _date_into(mat, days)
    mat[:, 10] = ord(sep)
    put_digits(mat, 11, secs // 3600, 2)
    mat[:, 13] = ord(":")
    put_digits(mat, 14, (secs // 60) % 60, 2)
    mat[:, 16] = ord(":")
    put_digits(mat, 17, secs % 60, 2)
    return from_matrix(mat)


def _last_sunday_0100_utc(year: int, month: int) -> int:
    last = date(year, month + 1, 1) - timedelta(days=1)
    last -= timedelta(days=(last.weekday() + 1) % 7)
    return day_of(last) * DAY + 3600


def amsterdam_offset(t: np.ndarray) -> np.ndarray:
    """UTC offset in seconds of Europe/Amsterdam at each instant (CET 3600, CEST 7200; EU DST rule:
    last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC)."""
    t = np.asarray(t, dtype=np.int64)
    out = np.full(t.shape, 3600, dtype=np.int64)
    if t.size == 0:
        return out
    y0 = int(civil(np.array([t.min() // DAY]))[0][0])
    y1 = int(civil(np.array([t.max() // DAY]))[0][0])
    for year in range(y0, y1 + 1):
        start, end = _last_sunday_0100_utc(year, 3), _last_sunday_0100_utc(year, 10)
        out[(t >= start) & (t < end)] = 7200
    return out


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
