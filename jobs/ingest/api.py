"""PSP list-API connector (Stripe-style lists: ``/v1/balance_transactions``, ``/v1/payouts``, ...).

Built on the HTTP provider's ``HttpHook`` (base URL and API key from the Airflow connection: for
Stripe, the secret key as the connection's login). Each run reads the objects created in
``[watermark - overlap, end of the run's data interval)`` with ``created[gte]`` / ``created[lt]``,
following ``starting_after`` cursors while ``has_more``. 429 and 5xx answers are retried with
exponential backoff (honouring ``Retry-After``); 401/403 fail at once (credentials).

Objects already landed by this connector (by their id, ``api_object_seen``) are dropped, so the
overlap re-reads late-visible objects without landing any object twice. The rest land as JSON
Lines, one object per line exactly as the API returned it, sorted by (created, id), in files of at
most ``objects_per_file`` objects named ``<source>_<resource>_<interval end>_<n>.jsonl``. The object
ids are recorded in the transaction that records the file, and the watermark moves to the interval
end afterwards: a crash anywhere leaves a state the next run completes without duplicates.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from jobs.ingest.config import Connector
from jobs.ingest.errors import ConnectorAuthError, ConnectorConfigError, ConnectorError
from jobs.ingest.jsonlines import jsonl, raw_array_items
from jobs.ingest.runs import IngestResult, get_watermark, set_watermark
from jobs.ingest.window import RunWindow
from jobs.landing import land_bytes
from jobs.settings import Settings

log = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
AUTH_STATUS = frozenset({401, 403})


def _error_message(resp) -> str:
    try:
        err = resp.json().get("error", {})
        return err.get("message") or resp.text[:300]
    except ValueError:
        return resp.text[:300]


def _retry_after(resp) -> float | None:
    value = resp.headers.get("Retry-After") if resp is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def get_page(hook, c: Connector, params: dict, sleep=time.sleep) -> str:
    """One list page's body; retries 429/5xx/connection errors with exponential backoff."""
    import requests

    cfg = c.config
    last = ""
    for attempt in range(1, cfg["max_attempts"] + 1):
        resp = None
        try:
            resp = hook.run(cfg["endpoint"], data=params, extra_options={"check_response": False, "timeout": 60})
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code == 200:
                return resp.text
            if resp.status_code in AUTH_STATUS:
                raise ConnectorAuthError(
                    f"{c.label}: {cfg['endpoint']} answered {resp.status_code} ({_error_message(resp)}): the API key "
                    f"in Airflow connection {cfg['conn_id']!r} is wrong or lacks permission")
            if resp.status_code not in RETRYABLE_STATUS:
                raise ConnectorError(f"{c.label}: {cfg['endpoint']} answered {resp.status_code}: "
                                     f"{_error_message(resp)} (request {params})")
            last = f"HTTP {resp.status_code}: {_error_message(resp)}"
        if attempt == cfg["max_attempts"]:
            break
        backoff = cfg["backoff_seconds"] * 2 ** (attempt - 1)
        delay = min(_retry_after(resp) or backoff, cfg["max_backoff_seconds"])
        log.warning("%s: %s (attempt %d of %d); retrying in %.1f s", c.label, last, attempt, cfg["max_attempts"], delay)
        sleep(delay)
    raise ConnectorError(f"{c.label}: {cfg['endpoint']} still failing after {cfg['max_attempts']} attempts "
                         f"(last: {last}); the run will be retried")


def fetch_window(hook, c: Connector, since: int, until: int) -> list[tuple[dict, str]]:
    """All objects created in [since, until): (parsed object, raw text as the API sent it)."""
    params: dict = {"limit": c.config["page_size"], "created[gte]": since, "created[lt]": until}
    objects: list[tuple[dict, str]] = []
    while True:
        body = get_page(hook, c, params)
        try:
            page = json.loads(body)
            raw_items = raw_array_items(body, "data")
        except (ValueError, KeyError) as exc:
            raise ConnectorError(f"{c.label}: {c.config['endpoint']} returned something that is not a list "
                                 f"object ({exc}): {body[:200]!r}") from exc
        items = [(json.loads(raw), raw) for raw in raw_items]
        objects += items
        if not page.get("has_more") or not items:
            return objects
        params = {**params, "starting_after": items[-1][0]["id"]}


def _unseen(db, c: Connector, objects: list[tuple[dict, str]]) -> list[tuple[dict, str]]:
    ids = list({o["id"] for o, _ in objects})
    seen = {r["object_id"] for r in db.execute(
        "SELECT object_id FROM api_object_seen WHERE tenant_id = %s AND connector_id = %s AND object_id = ANY(%s)",
        (c.tenant_id, c.connector_id, ids)).fetchall()}
    fresh: dict[str, tuple[dict, str]] = {}
    for obj, raw in objects:
        if obj["id"] not in seen:
            fresh.setdefault(obj["id"], (obj, raw))
    return sorted(fresh.values(), key=lambda item: (item[0].get("created", 0), item[0]["id"]))


def _record_ids(c: Connector, ids: list[str]):
    def record(conn, result) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO api_object_seen (tenant_id, connector_id, object_id, sha256) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING", [(c.tenant_id, c.connector_id, i, result.sha256) for i in ids])
    return record


def ingest_api(settings: Settings, db, c: Connector, window: RunWindow,
               result: IngestResult | None = None) -> IngestResult:
    from airflow.providers.http.hooks.http import HttpHook

    cfg = c.config
    if cfg["flavour"] != "stripe_list":
        raise ConnectorConfigError(f"{c.label}: API flavour {cfg['flavour']!r} is not supported")
    hook = HttpHook(method="GET", http_conn_id=cfg["conn_id"])
    until = window.end
    start = get_watermark(db, c) or until - timedelta(hours=cfg["initial_lookback_hours"])
    since = start - timedelta(minutes=cfg["overlap_minutes"])
    result = result if result is not None else IngestResult()
    if since < until:
        objects = fetch_window(hook, c, int(since.timestamp()), int(until.timestamp()))
        fresh = _unseen(db, c, objects)
        result.files_seen = len(objects)
        result.notes.append(f"{len(objects)} objects created in [{since.isoformat()}, {until.isoformat()}), "
                            f"{len(fresh)} not landed before")
        resource = cfg["endpoint"].rstrip("/").rsplit("/", 1)[-1]
        per_file = cfg["objects_per_file"]
        for n, first in enumerate(range(0, len(fresh), per_file), start=1):
            chunk = fresh[first:first + per_file]
            name = f"{c.source}_{resource}_{until:%Y%m%dT%H%M%SZ}_{n:03d}.jsonl"
            remote = f"{cfg['endpoint']}?created[gte]={int(since.timestamp())}&created[lt]={int(until.timestamp())}#{n}"
            result.add(land_bytes(settings, db, c.tenant_id, window.received_date, jsonl([raw for _, raw in chunk]),
                                  name, c.connector_id, remote, source_hint=c.source,
                                  on_commit=_record_ids(c, [o["id"] for o, _ in chunk])))
    set_watermark(db, c, until)
    return result
