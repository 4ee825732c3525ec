"""Connector runs (one row per attempt, visible in PostgreSQL next to the Airflow task) and state."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from jobs.ingest.config import Connector
from jobs.ingest.window import RunWindow
from jobs.landing import LandResult


@dataclass
class IngestResult:
    """What one connector run did: files it looked at, landed, found already landed, skipped."""
    files_seen: int = 0
    landed: list[LandResult] = field(default_factory=list)
    already_landed: list[LandResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)          # e.g. still being written on the server
    notes: list[str] = field(default_factory=list)

    def add(self, result: LandResult) -> None:
        (self.landed if result.outcome == "landed" else self.already_landed).append(result)

    def summary(self) -> dict:
        return {"files_seen": self.files_seen, "landed": len(self.landed), "already_landed": len(self.already_landed),
                "skipped": len(self.skipped), "landed_files": [r.file_name for r in self.landed],
                "notes": self.notes}

    def detail(self) -> dict:
        return {"landed": [asdict(r) for r in self.landed], "already_landed": [r.sha256 for r in self.already_landed],
                "skipped": self.skipped, "notes": self.notes}


def start_run(conn, c: Connector, window: RunWindow, try_number: int) -> int:
    row = conn.execute(
        "INSERT INTO connector_run (tenant_id, connector_id, connector_version, dag_run_id, try_number, received_date, "
        "status) VALUES (%s, %s, %s, %s, %s, %s, 'running') RETURNING run_pk",
        (c.tenant_id, c.connector_id, c.version, window.run_id, try_number, window.received_date)).fetchone()
    conn.commit()
    return row["run_pk"]


def finish_run(conn, run_pk: int, result: IngestResult) -> None:
    conn.execute(
        "UPDATE connector_run SET status = 'succeeded', finished_at = now(), files_seen = %s, files_landed = %s, "
        "files_already_landed = %s, detail = %s WHERE run_pk = %s",
        (result.files_seen, len(result.landed), len(result.already_landed), json.dumps(result.detail()), run_pk))
    conn.commit()


def fail_run(conn, run_pk: int, error: str, result: IngestResult | None = None) -> None:
    result = result or IngestResult()
    conn.execute(
        "UPDATE connector_run SET status = 'failed', finished_at = now(), error = %s, files_seen = %s, "
        "files_landed = %s, files_already_landed = %s, detail = %s WHERE run_pk = %s",
        (error[:4000], result.files_seen, len(result.landed), len(result.already_landed), json.dumps(result.detail()),
         run_pk))
    conn.commit()


def get_watermark(conn, c: Connector) -> datetime | None:
    row = conn.execute("SELECT watermark FROM connector_state WHERE tenant_id = %s AND connector_id = %s",
                       (c.tenant_id, c.connector_id)).fetchone()
    return row["watermark"] if row else None


def set_watermark(conn, c: Connector, watermark: datetime) -> None:
    """Move the watermark forward (never back: a rerun of an old interval does not rewind it). Commits."""
    conn.execute(
        "INSERT INTO connector_state (tenant_id, connector_id, watermark) VALUES (%s, %s, %s) "
        "ON CONFLICT (tenant_id, connector_id) DO UPDATE SET watermark = GREATEST(connector_state.watermark, "
        "EXCLUDED.watermark), updated_at = now()", (c.tenant_id, c.connector_id, watermark))
    conn.commit()


def deliveries_on(conn, c: Connector, day) -> int:
    """Files this connector delivered for a received date (new or already landed content)."""
    row = conn.execute(
        "SELECT count(*) AS n FROM raw_file_delivery WHERE tenant_id = %s AND connector = %s AND received_date = %s",
        (c.tenant_id, c.connector_id, day)).fetchone()
    return row["n"]
