"""``history.lookback_days``: how far back a run reads, validated when the tenant's file is loaded."""
import pytest
import yaml

from jobs.settings import ConfigurationError, PACKAGE_DIR
from jobs.tenants import parse_tenant


def acme(**history):
    raw = yaml.safe_load((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())
    if history:
        raw["history"] = history
    else:
        raw.pop("history", None)
    return raw


def test_acme_reads_45_days_and_unset_means_45_or_what_the_windows_need():
    assert parse_tenant(yaml.safe_dump(acme(lookback_days=45))).lookback_days == 45
    assert parse_tenant(yaml.safe_dump(acme())).lookback_days == 45
    slow = acme()
    slow["psps"]["adyen"]["settlement_business_days"] = 30         # a PSP that pays out after six weeks
    cfg = parse_tenant(yaml.safe_dump(slow))
    # L3 window 5 + (30 settlement + 3 + 2 ageing business days) x 7/5 = 49, + 7 for holidays
    assert cfg.minimum_lookback_days == 5 + 49 + 7
    assert cfg.lookback_days == 61


@pytest.mark.parametrize("value, message", [
    (10, "history.lookback_days 10 is shorter than the 22 days its matching, settlement and ageing windows need"),
    ("45", "history.lookback_days must be a whole number of days, got '45'"),
    (True, "history.lookback_days must be a whole number of days, got True"),
])
def test_a_lookback_the_rules_cannot_work_with_is_refused_when_the_file_is_read(value, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_tenant(yaml.safe_dump(acme(lookback_days=value)))
