"""The durable webhook inbox (``webhook_event``) and the batches landed from it (``webhook_batch``).

Receiving: ``InboxWriter`` commits verified events with group commit (all requests waiting while
one transaction commits go into the next one) and reports, per event, ``accepted`` (new),
``duplicate`` (same event key, different signature: the PSP's own retry) or ``replay`` (same event
key and same signature). The receiver answers only after the commit, so an acknowledged event is
on disk even if the process dies right after answering.

Landing (``drain_webhooks``, called by the ingest DAG): pending events are assigned to a batch in one
transaction (fixing the batch's content: its events in ``event_pk`` order), then the batch lands as
one JSON Lines file through ``jobs.landing.land_bytes`` and is marked landed in the same transaction
as its manifest row. A crash in between leaves a batch that the next run lands again with identical
content, so it lands once.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from jobs.ingest.config import Connector
from jobs.ingest.jsonlines import jsonl
from jobs.ingest.runs import IngestResult
from jobs.ingest.webhooks.signatures import VerifiedEvent
from jobs.ingest.window import RunWindow
from jobs.landing import land_bytes
from jobs.settings import Settings

log = logging.getLogger(__name__)
ACCEPTED, DUPLICATE, REPLAY = "accepted", "duplicate", "replay"
FILE_PREFIX = {"stripe": "stripe_events", "adyen": "adyen_notifications"}


@dataclass(frozen=True)
class InboxItem:
    tenant_id: str
    connector_id: str
    event: VerifiedEvent

    @property
    def key(self) -> tuple[str, str, str]:
        return self.tenant_id, self.connector_id, self.event.event_key


_INSERT = (
    "INSERT INTO webhook_event (tenant_id, connector_id, event_key, event_type, signature_sha256, payload) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[]) "
    "ON CONFLICT (tenant_id, connector_id, event_key) DO NOTHING RETURNING tenant_id, connector_id, event_key")
_STORED_SIGNATURES = (
    "SELECT e.tenant_id, e.connector_id, e.event_key, e.signature_sha256 FROM webhook_event e "
    "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(tenant_id, connector_id, event_key) "
    "USING (tenant_id, connector_id, event_key)")


async def write_items(conn, items: list[InboxItem]) -> list[str]:
    """Insert in one transaction; the outcome of each item, in order. Row-level security admits one tenant's rows
    at a time: the transaction names each tenant of the group before its rows."""
    first: dict[tuple[str, str, str], InboxItem] = {}
    for item in items:
        first.setdefault(item.key, item)
    inserted: set[tuple] = set()
    stored: dict[tuple, str] = {}
    async with conn.transaction():
        for tenant in sorted({i.tenant_id for i in items}):
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
            fresh = [i for i in first.values() if i.tenant_id == tenant]
            cur = await conn.execute(_INSERT, (
                [i.tenant_id for i in fresh], [i.connector_id for i in fresh], [i.event.event_key for i in fresh],
                [i.event.event_type for i in fresh], [i.event.signature_sha256 for i in fresh],
                [i.event.payload for i in fresh]))
            inserted |= {tuple(r) for r in await cur.fetchall()}
            others = [i for i in items if i.tenant_id == tenant and (i.key not in inserted or first[i.key] is not i)]
            if others:
                cur = await conn.execute(_STORED_SIGNATURES, ([i.tenant_id for i in others],
                                                              [i.connector_id for i in others],
                                                              [i.event.event_key for i in others]))
                stored |= {tuple(r[:3]): r[3] for r in await cur.fetchall()}
    outcomes = []
    for item in items:
        if item.key in inserted and first[item.key] is item:
            outcomes.append(ACCEPTED)
        else:
            outcomes.append(REPLAY if stored.get(item.key) == item.event.signature_sha256 else DUPLICATE)
    return outcomes


class InboxWriter:
    """Group commit of inbox items from many concurrent requests over one connection."""

    def __init__(self, database_url: str, max_items: int = 1000):
        self.database_url = database_url
        self.max_items = max_items
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._conn = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._run(), name="webhook-inbox-writer")

    async def _connect(self):
        import psycopg

        return await psycopg.AsyncConnection.connect(self.database_url, application_name="psp-recon-webhooks")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._conn:
            await self._conn.close()

    async def submit(self, items: list[InboxItem], timeout: float = 30.0) -> list[str]:
        """Outcomes once committed. A timeout answers 503: if the commit still happens, the PSP's
        next delivery is a duplicate and is stored once."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((items, future))
        return await asyncio.wait_for(future, timeout)

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            count = len(group[0][0])
            while count < self.max_items and not self._queue.empty():
                group.append(self._queue.get_nowait())
                count += len(group[-1][0])
            try:
                await self._commit(group)
            except Exception:   # never let the writer die: every later request would hang
                log.exception("webhook inbox writer: unexpected error")

    async def _commit(self, group) -> None:
        items = [item for batch, _ in group for item in batch]
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
            outcomes = await write_items(self._conn, items)
        except Exception as exc:  # the requests answer 503: the PSP delivers again later
            log.exception("webhook inbox: commit of %d event(s) failed", len(items))
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if self._conn is not None and not self._conn.closed:
                await self._conn.close()
            self._conn = None
            return
        at = 0
        for batch, future in group:
            if not future.done():
                future.set_result(outcomes[at:at + len(batch)])
            at += len(batch)


# --- landing batches (sync: the ingest DAG's task) ------------------------------------------------

def _create_batch(db, c: Connector, window: RunWindow, max_events: int) -> int | None:
    batch_id = db.execute(
        "INSERT INTO webhook_batch (tenant_id, connector_id, received_date, event_count) VALUES (%s, %s, %s, 0) "
        "RETURNING batch_id", (c.tenant_id, c.connector_id, window.received_date)).fetchone()["batch_id"]
    n = db.execute(
        "UPDATE webhook_event SET batch_id = %s WHERE event_pk IN (SELECT event_pk FROM webhook_event "
        "WHERE tenant_id = %s AND connector_id = %s AND batch_id IS NULL ORDER BY event_pk LIMIT %s "
        "FOR UPDATE SKIP LOCKED)", (batch_id, c.tenant_id, c.connector_id, max_events)).rowcount
    if n == 0:
        db.rollback()
        return None
    db.execute("UPDATE webhook_batch SET event_count = %s WHERE batch_id = %s", (n, batch_id))
    db.commit()
    return batch_id


def _mark_landed(batch_id: int):
    def record(conn, result) -> None:
        conn.execute("UPDATE webhook_batch SET sha256 = %s, raw_uri = %s, landed_at = now() WHERE batch_id = %s",
                     (result.sha256, result.raw_uri, batch_id))
    return record


def land_batch(settings: Settings, db, c: Connector, batch_id: int):
    batch = db.execute("SELECT received_date FROM webhook_batch WHERE batch_id = %s", (batch_id,)).fetchone()
    payloads = db.execute("SELECT payload FROM webhook_event WHERE batch_id = %s ORDER BY event_pk",
                          (batch_id,)).fetchall()
    content = jsonl([bytes(r["payload"]).decode("utf-8") for r in payloads])
    name = f"{FILE_PREFIX[c.config['provider']]}_{batch_id:010d}.jsonl"
    return land_bytes(settings, db, c.tenant_id, batch["received_date"], content, name, c.connector_id,
                      f"webhook:{c.connector_id}/batch/{batch_id}", source_hint=c.source,
                      on_commit=_mark_landed(batch_id))


def drain_webhooks(settings: Settings, db, c: Connector, window: RunWindow,
                   result: IngestResult | None = None) -> IngestResult:
    """Land every accepted, not yet landed event of the connector, in batches."""
    result = result if result is not None else IngestResult()
    unfinished = [r["batch_id"] for r in db.execute(
        "SELECT batch_id FROM webhook_batch WHERE tenant_id = %s AND connector_id = %s AND landed_at IS NULL "
        "ORDER BY batch_id", (c.tenant_id, c.connector_id)).fetchall()]
    db.commit()
    if unfinished:
        result.notes.append(f"completing {len(unfinished)} batch(es) left unlanded by an earlier run")
    for batch_id in unfinished:
        result.add(land_batch(settings, db, c, batch_id))
    while (batch_id := _create_batch(db, c, window, c.config["batch_max_events"])) is not None:
        result.add(land_batch(settings, db, c, batch_id))
    result.files_seen = len(result.landed) + len(result.already_landed)
    return result
