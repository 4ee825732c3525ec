"""The outcome conditions as a table: a day's figures and the tenant's thresholds in, the alerts that hold out
(``jobs.alerts.outcomes.evaluate``, pure); a threshold that is not configured is not checked; a bad one is refused
with the setting named when the configuration is read."""
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.alerts.outcomes import Figures, Thresholds, evaluate
from jobs.calendar import BusinessCalendar
from jobs.settings import ConfigurationError
from jobs.tenants import parse_tenant

DAY = date(2026, 11, 20)                # a Friday
CAL = BusinessCalendar(["Sat", "Sun"], [])
ALL = {"match_rate": {"minimum": "0.90", "max_drop_points": "5"}, "open_exceptions_max": 100,
       "unreconciled_max": {"*": "1000.00", "JPY": "50000"}, "sla_breaches_max": 0,
       "expected_sources": ["stripe", "bank"]}


def figures(day=DAY, rates=None, ledger=None, files=None, open_count=None, open_amount=None, overdue=None):
    rates = rates if rates is not None else {DAY: (1000, 950)}
    return Figures(day, rates, ledger or {"EUR": (500, 500)}, files if files is not None else {"stripe": 1, "bank": 1},
                   open_count or {}, open_amount or {}, overdue or {})


def kinds(found):
    return sorted((c.kind, c.dimension, c.priority) for c in found)


def trailing(*rates_per_mille):
    """Book figures of the days before DAY (1000 records each) and DAY itself (the last value)."""
    days = [DAY - timedelta(days=len(rates_per_mille) - 1 - i) for i in range(len(rates_per_mille))]
    return {d: (1000, r) for d, r in zip(days, rates_per_mille)}


@pytest.mark.parametrize("case, fig, expected", [
    ("all well", figures(), []),
    ("ledger off in one currency", figures(ledger={"EUR": (500, 500), "USD": (700, 690)}),
     [("ledger_unbalanced", "USD", "P1")]),
    ("a file missing", figures(files={"stripe": 2}), [("source_missing", "bank", "P2")]),
    ("no file on a Saturday is expected", figures(day=DAY + timedelta(days=1), files={},
                                                  rates={DAY + timedelta(days=1): (1000, 950)}), []),
    ("rate below the minimum", figures(rates={DAY: (1000, 899)}), [("match_rate_low", "", "P2")]),
    ("rate at the minimum", figures(rates={DAY: (1000, 900)}), []),
    ("a drop of 6 points against the median", figures(rates=trailing(960, 990, 950, 990, 915)),
     [("match_rate_drop", "", "P2")]),
    ("a drop of 5 points is allowed", figures(rates=trailing(960, 990, 950, 990, 925)), []),
    ("no earlier run: no drop", figures(rates={DAY: (1000, 910)}), []),
    ("too many open exceptions", figures(open_count={"EUR": 60, "USD": 41}), [("open_exceptions", "", "P3")]),
    ("unreconciled per currency, * and its own limit", figures(
        open_count={"EUR": 3, "USD": 1, "JPY": 2}, open_amount={"EUR": 100001, "USD": 100000, "JPY": 50001}),
     [("unreconciled_amount", "EUR", "P2"), ("unreconciled_amount", "JPY", "P2")]),
    ("one exception past its SLA", figures(overdue={"DUPLICATE": 1}), [("sla_breached", "", "P3")]),
])
def test_each_condition_holds_exactly_past_its_threshold(case, fig, expected):
    assert kinds(evaluate(fig, Thresholds.from_config("t", ALL), CAL)) == expected, case


def test_an_unconfigured_threshold_is_not_checked_but_the_ledger_always_is():
    bad_day = figures(rates={DAY: (1000, 10)}, files={}, open_count={"EUR": 10**6}, open_amount={"EUR": 10**12},
                      overdue={"AMBIGUOUS": 500}, ledger={"EUR": (1, 2)})
    assert kinds(evaluate(bad_day, Thresholds.from_config("t", None), CAL)) == [("ledger_unbalanced", "EUR", "P1")]


def test_messages_name_the_figures_and_priorities_can_be_overridden():
    thresholds = Thresholds.from_config("t", {**ALL, "priorities": {"source_missing": "P1"}})
    found = {c.kind: c for c in evaluate(figures(rates=trailing(950, 960, 880), files={"bank": 1},
                                                 open_count={"EUR": 2}, open_amount={"EUR": 250075}),
                                         thresholds, CAL)}
    assert found["source_missing"].priority == "P1"
    assert found["source_missing"].message == "no stripe file was received and parsed for 2026-11-20"
    assert found["match_rate_low"].message == "book match rate 88.00 % on 2026-11-20, below the minimum of 90.00 %"
    assert found["match_rate_drop"].message == ("book match rate 88.00 % on 2026-11-20, 7.50 points below the median "
                                                "95.50 % of the 2 run(s) of the 7 days before")
    assert found["unreconciled_amount"].message == ("2500.75 EUR unreconciled in 2 open exceptions on 2026-11-20, "
                                                    "more than 1000.00 EUR")
    assert found["unreconciled_amount"].detail == {"currency": "EUR", "amount_minor": 250075, "maximum_minor": 100000,
                                                   "open": 2}
    assert Decimal(found["match_rate_drop"].detail["trailing_median"]) == Decimal("0.955")


@pytest.mark.parametrize("alerts, named", [
    ({"match_rate": {"minimum": "1.5"}}, "alerts.match_rate.minimum '1.5'"),
    ({"match_rate": {"max_drop_points": "ten"}}, "alerts.match_rate.max_drop_points 'ten'"),
    ({"open_exceptions_max": -1}, "alerts.open_exceptions_max -1"),
    ({"unreconciled_max": {"EUR": "-5"}}, "alerts.unreconciled_max.EUR '-5'"),
    ({"priorities": {"ledger_unbalanced": "P4"}}, "alerts.priorities.ledger_unbalanced 'P4'"),
    ({"channels": {"P1": "recon_alert_slack"}}, "alerts.channels.P1 'recon_alert_slack'"),
    ({"rate_limit_per_hour": 0}, "alerts.rate_limit_per_hour 0"),
])
def test_a_bad_threshold_is_refused_when_the_configuration_is_read(alerts, named):
    import yaml

    raw = yaml.safe_load((Path(__file__).parents[2] / "jobs" / "conf" / "tenants" / "acme.yaml").read_text())
    raw["alerts"] = alerts
    with pytest.raises(ConfigurationError, match=f"acme.yaml: tenant acme: {named}"):
        parse_tenant(yaml.safe_dump(raw), "acme.yaml")
