from datetime import date

from jobs.calendar import BusinessCalendar


def test_business_days_skip_weekends_and_holidays():
    cal = BusinessCalendar(["Sat", "Sun"], ["2026-12-25"])
    assert cal.add_business_days(date(2026, 11, 20), 1) == date(2026, 11, 23)     # Fri -> Mon
    assert cal.add_business_days(date(2026, 11, 21), 1) == date(2026, 11, 23)     # Sat -> Mon
    assert cal.add_business_days(date(2026, 12, 24), 1) == date(2026, 12, 28)     # Thu -> (Fri holiday) Mon
    assert cal.add_business_days(date(2026, 11, 18), 3) == date(2026, 11, 23)
    assert cal.add_business_days(date(2026, 11, 18), 0) == date(2026, 11, 18)
