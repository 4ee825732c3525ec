"""The webhook receiver: a plain ASGI app (run by uvicorn: ``recon webhooks serve``).

``POST /webhooks/<tenant_id>/<connector_id>``: the connector (kind ``webhook``, enabled) says which
PSP signs the requests and which Airflow connection holds the signing secret (its password; several
secrets comma-separated while rolling). Answers:

| status | when                                                                                   |
|--------|----------------------------------------------------------------------------------------|
| 200    | accepted (committed to the inbox), or a duplicate of an accepted event (the PSP's own   |
|        | retry: same event id, new signature); stored once. Adyen gets ``[accepted]``.          |
| 400    | malformed: no/garbled signature header, body not the PSP's JSON, no event id           |
| 401    | forged: the signature (Stripe) or an item's HMAC (Adyen) does not verify, or Adyen's   |
|        | basic auth is wrong                                                                     |
| 404    | no such enabled webhook connector                                                       |
| 409    | replay: a validly signed Stripe request whose timestamp is outside the tolerance, or    |
|        | the identical signed request again (a Stripe retry is signed anew)                     |
| 413    | body over 1 MiB                                                                        |
| 503    | the inbox (PostgreSQL) is unavailable: nothing was accepted, the PSP delivers again    |

Adyen signs items, not requests, and retries with the identical HMAC: a repeated Adyen item cannot
be told from Adyen's retry, so it is acknowledged and stored once. ``GET /healthz`` answers 200.
Nothing is acknowledged before it is committed (see ``inbox``). The events are landed by the hourly
ingest DAG (the connector's task), in batches.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass

from jobs.ingest.webhooks.inbox import ACCEPTED, REPLAY, InboxItem, InboxWriter
from jobs.ingest.webhooks.signatures import UNAUTHORIZED, WebhookRejected, card_free, verify_adyen, verify_stripe

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20
CACHE_SECONDS = 30.0
_PATH = re.compile(r"^/webhooks/([a-z][a-z0-9_]{1,62})/([a-z][a-z0-9_-]{1,62})/?$")


@dataclass(frozen=True)
class Endpoint:
    tenant_id: str
    connector_id: str
    provider: str
    secrets: list[str]
    tolerance_seconds: int
    basic_auth: tuple[str, str] | None


def _connection_secrets(conn_id: str) -> list[str]:
    from airflow.sdk import BaseHook

    password = BaseHook.get_connection(conn_id).password or ""
    return [s.strip() for s in password.split(",") if s.strip()]


def _connection_login(conn_id: str) -> tuple[str, str]:
    from airflow.sdk import BaseHook

    c = BaseHook.get_connection(conn_id)
    return c.login or "", c.password or ""


def _preload_airflow() -> None:
    """Import Airflow's connection machinery once at startup (seconds), not on the first request."""
    import airflow.sdk  # noqa: F401


class Endpoints:
    """Webhook connectors from PostgreSQL and their secrets from Airflow connections, cached briefly."""

    def __init__(self, database_url: str, ttl: float = CACHE_SECONDS):
        self.database_url = database_url
        self.ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Endpoint | None]] = {}
        self._lock = asyncio.Lock()
        self._conn = None

    async def get(self, tenant_id: str, connector_id: str) -> Endpoint | None:
        key = (tenant_id, connector_id)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        async with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            endpoint = await self._load(tenant_id, connector_id)
            self._cache[key] = (time.monotonic() + self.ttl, endpoint)
            return endpoint

    async def _load(self, tenant_id: str, connector_id: str) -> Endpoint | None:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
        async with self._conn.transaction():          # row-level security: the transaction names its tenant
            await self._conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            cur = await self._conn.execute(
                "SELECT config FROM connector WHERE tenant_id = %s AND connector_id = %s AND kind = 'webhook' AND enabled",
                (tenant_id, connector_id))
            row = await cur.fetchone()
        if row is None:
            return None
        cfg = row[0]
        secrets = await asyncio.to_thread(_connection_secrets, cfg["secret_conn_id"])
        if not secrets:
            log.error("webhook connector %s/%s: connection %r has no secret (password)", tenant_id, connector_id,
                      cfg["secret_conn_id"])
            return None
        basic = None
        if cfg.get("basic_auth_conn_id"):
            basic = await asyncio.to_thread(_connection_login, cfg["basic_auth_conn_id"])
        return Endpoint(tenant_id, connector_id, cfg["provider"], secrets, int(cfg.get("tolerance_seconds", 300)), basic)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _check_basic_auth(endpoint: Endpoint, headers: dict[bytes, bytes]) -> None:
    if endpoint.basic_auth is None:
        return
    given = headers.get(b"authorization", b"").decode("latin-1")
    try:
        login, _, password = base64.b64decode(given.removeprefix("Basic ").strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        login, password = "", ""
    ok_login = hmac.compare_digest(login.encode(), endpoint.basic_auth[0].encode())
    ok_password = hmac.compare_digest(password.encode(), endpoint.basic_auth[1].encode())
    if not (given.startswith("Basic ") and ok_login and ok_password):
        raise WebhookRejected(UNAUTHORIZED, "basic authentication failed")


def verify(endpoint: Endpoint, headers: dict[bytes, bytes], body: bytes, now: float):
    if endpoint.provider == "stripe":
        header = headers.get(b"stripe-signature", b"").decode("latin-1") or None
        return [verify_stripe(header, body, endpoint.secrets, endpoint.tolerance_seconds, now)]
    _check_basic_auth(endpoint, headers)
    return verify_adyen(body, endpoint.secrets)


class WebhookApp:
    """The ASGI application."""

    def __init__(self, database_url: str, clock=time.time):
        self.endpoints = Endpoints(database_url)
        self.inbox = InboxWriter(database_url)
        self.clock = clock

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body, content_type = await self._handle(scope, receive)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.inbox.start()
                    await asyncio.to_thread(_preload_airflow)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.inbox.stop()
                await self.endpoints.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope, receive) -> tuple[int, bytes, bytes]:
        path = scope["path"]
        if path == "/healthz":
            return 200, b'{"status":"ok"}', b"application/json"
        match = _PATH.match(path)
        if not match:
            return _json(404, {"error": "not found: POST /webhooks/<tenant_id>/<connector_id>"})
        if scope["method"] != "POST":
            return _json(405, {"error": "use POST"})
        body = await _read_body(receive)
        if body is None:
            return _json(413, {"error": f"body larger than {MAX_BODY} bytes"})
        tenant_id, connector_id = match.groups()
        try:
            endpoint = await self.endpoints.get(tenant_id, connector_id)
        except Exception:
            log.exception("webhook %s/%s: connector lookup failed", tenant_id, connector_id)
            return _json(503, {"error": "configuration store unavailable, deliver again later"})
        if endpoint is None:
            return _json(404, {"error": f"no enabled webhook connector {tenant_id}/{connector_id}"})
        headers = dict(scope["headers"])
        try:
            events = verify(endpoint, headers, body, self.clock())
        except WebhookRejected as rejected:
            log.warning("webhook %s/%s refused (%s): %s", tenant_id, connector_id, rejected.status, rejected)
            return _json(rejected.status, {"error": str(rejected)})
        try:                               # verified on the bytes as sent; stored without card numbers
            events = [card_free(e) for e in events]
        except ValueError as exc:
            log.error("webhook %s/%s refused: %s", tenant_id, connector_id, exc)
            return _json(400, {"error": "the event's card numbers cannot be masked"})
        try:
            outcomes = await self.inbox.submit([InboxItem(tenant_id, connector_id, e) for e in events])
        except Exception:
            return _json(503, {"error": "inbox unavailable, nothing was accepted; deliver again later"})
        if endpoint.provider == "stripe" and outcomes[0] == REPLAY:
            return _json(409, {"error": f"replay refused: event {events[0].event_key} with this signature was "
                                        "already accepted"})
        if endpoint.provider == "adyen":
            return 200, b"[accepted]", b"text/plain"
        return _json(200, {"received": True, "outcome": outcomes[0] if outcomes[0] == ACCEPTED else "duplicate"})


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _json(status: int, payload: dict) -> tuple[int, bytes, bytes]:
    return status, json.dumps(payload).encode(), b"application/json"


def serve(host: str, port: int, database_url: str, log_level: str = "info") -> None:
    """Run the receiver until stopped (SIGTERM/SIGINT: in-flight requests finish first)."""
    import uvicorn

    uvicorn.run(WebhookApp(database_url), host=host, port=port, log_level=log_level, access_log=False,
                lifespan="on", timeout_graceful_shutdown=10)
