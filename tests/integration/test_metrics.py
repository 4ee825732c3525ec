"""A run's figures as StatsD gauges, received by a UDP server on 127.0.0.1 as a StatsD daemon receives them: one
gauge per recorded figure with its value, the match rate, nothing without a configured host; the Grafana dashboard
asks only for metrics the export sends."""
from __future__ import annotations

import json
import re
import socket
import threading
from datetime import date
from pathlib import Path

import pytest

from jobs import metrics

DAY = date(2026, 11, 20)
DASHBOARD = Path(__file__).parents[2] / "infra" / "grafana" / "psp-recon.json"
ROWS = [("records_loaded", "stripe", 5), ("records_loaded", "book", 7), ("matched_records", "book_psp/L1", 10),
        ("exceptions", "MISSING_IN_PSP", 3), ("records_quarantined", "AMOUNT_PRECISION", 1),
        ("book_records", "total", 7), ("book_records", "matched", 6), ("fees_charged_minor", "stripe|EUR", 1773),
        ("fees_expected_minor", "stripe|EUR", 1780), ("disputes", "evidence_due", 1),
        ("trial_balance_debit_minor", "1010 Bank|EUR", 100)]


class StatsdServer:
    """Every datagram sent to a UDP port on 127.0.0.1, as lines."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            self.lines += data.decode().splitlines()

    def gauges(self, wait_for: int) -> dict[str, int]:
        for _ in range(50):
            if len(self.lines) >= wait_for:
                break
            self._stop.wait(0.1)
        return {m: int(v) for m, v, kind in (re.fullmatch(r"(.+):(-?[\d.]+)\|(\w+)", line).groups()
                                             for line in self.lines) if kind == "g"}

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.mark.postgres
def test_a_runs_figures_arrive_as_gauges(settings, tenant_id):
    from jobs.store.db import connect
    from jobs.tenants import load_tenant, record_tenant

    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status) VALUES (%s, %s, 'r', "
                     "'succeeded')", (tenant_id, DAY))
        for metric, dim, value in ROWS:
            conn.execute("INSERT INTO run_metric (tenant_id, business_date, metric, dimension, value) VALUES "
                         "(%s, %s, %s, %s, %s)", (tenant_id, DAY, metric, dim, value))
    assert metrics.export(settings, tenant_id, DAY) == 0                 # no StatsD host: nothing sent
    server = StatsdServer()
    try:
        on = settings.with_(statsd_host="127.0.0.1", statsd_port=server.port, statsd_prefix="psp_recon")
        assert metrics.export(on, tenant_id, DAY) == len(ROWS)           # the trial balance left out, the rate added
        got = server.gauges(len(ROWS))
        metrics.stage_timing(on, tenant_id, "match", 1234.5)
        server.gauges(len(ROWS) + 1)
        timings = [line for line in server.lines if line.endswith("|ms")]
    finally:
        server.stop()
    p = f"psp_recon.{tenant_id}"
    assert got == {f"{p}.records_loaded.stripe": 5, f"{p}.records_loaded.book": 7,
                   f"{p}.matched_records.book_psp.L1": 10, f"{p}.exceptions.MISSING_IN_PSP": 3,
                   f"{p}.records_quarantined.AMOUNT_PRECISION": 1, f"{p}.book_records.total": 7,
                   f"{p}.book_records.matched": 6, f"{p}.fees_charged_minor.stripe.EUR": 1773,
                   f"{p}.fees_expected_minor.stripe.EUR": 1780, f"{p}.disputes.evidence_due": 1,
                   f"{p}.book_match_rate_ppm": 857142}
    assert timings == [f"{p}.stage.match:1234.500000|ms"]

    # the dashboard asks for nothing the export does not send (Graphite paths under a StatsD daemon's stats.gauges)
    sent = [f"stats.gauges.{m}" for m in got] + [f"stats.timers.{p}.stage.match.mean"]
    targets = [t["target"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
    for target in targets:
        path = re.search(r"(stats\.[A-Za-z0-9_.$*]+)", target).group(1).replace("$tenant", tenant_id)
        pattern = re.compile("^" + re.escape(path).replace(r"\*", r"[^.]+") + "$")
        assert any(pattern.match(m) for m in sent), f"the dashboard's {path} is never sent"


def test_metric_names_hold_only_what_statsd_names_can():
    assert metrics.name("acme", "matched_records", "book_psp/L1") == "acme.matched_records.book_psp.L1"
    assert metrics.name("acme", "fees_charged_minor", "adyen|EUR") == "acme.fees_charged_minor.adyen.EUR"
    assert metrics.name("acme", "files_parsed", "stripe.balance report:v2") == "acme.files_parsed.stripe_balance_report_v2"
