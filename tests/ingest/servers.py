"""Real servers on 127.0.0.1 for the ingestion tests, each in a background thread of the test process.

- ``SftpServer``: an asyncssh SSH server with the SFTP subsystem (password auth, real host key),
  serving a folder; ``cut_next_download(name, after)`` makes the next read of that file beyond
  ``after`` bytes drop the connection (a transfer cut off midway).
- ``MailServer``: mail-devel (pymap IMAP4rev1 + aiosmtpd SMTP); ``send()`` delivers over SMTP.
- ``FakePsp``: an HTTP server imitating Stripe's list API (``/v1/balance_transactions``: created[gte]/
  created[lt] filters, newest first, ``starting_after`` cursors, ``has_more``, API key as basic-auth
  user, 429 every Nth request) and an alert sink (``POST /hooks/...`` is recorded).
The S3 server is moto's ``ThreadedMotoServer`` (conftest).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _LoopThread:
    """An asyncio loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --- SFTP ----------------------------------------------------------------------------------------

class SftpServer:
    def __init__(self, root: Path, users: dict[str, str]):
        import asyncssh

        self.root = root
        self.users = users
        self.port = free_port()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.cuts: dict[str, int] = {}          # file name -> byte offset where the next read drops the link
        self.reads = defaultdict(int)           # file name -> completed opens for reading
        self._loop = _LoopThread()
        self._server = self._loop.run(self._start())

    @property
    def public_host_key(self) -> str:
        """``ssh-ed25519 AAAA...``: what the Airflow connection's ``host_key`` extra holds."""
        return " ".join(self.host_key.export_public_key().decode().split()[:2])

    def cut_next_download(self, name: str, after_bytes: int) -> None:
        self.cuts[name] = after_bytes

    async def _start(self):
        import asyncssh

        server = self

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return server.users.get(username) == password

        class Sftp(asyncssh.SFTPServer):
            def __init__(self, chan):
                super().__init__(chan, chroot=str(server.root))

            def read(self, file_obj, offset, size):
                name = Path(os.fsdecode(file_obj.name)).name
                cut = server.cuts.get(name)
                if cut is not None and offset + size > cut:
                    del server.cuts[name]
                    self.channel.get_connection().abort()       # the link drops mid-transfer
                    raise asyncssh.SFTPConnectionLost("connection cut by the test")
                return super().read(file_obj, offset, size)

        return await asyncssh.listen("127.0.0.1", self.port, server_host_keys=[self.host_key], server_factory=Auth,
                                     sftp_factory=Sftp, allow_scp=False)

    def stop(self) -> None:
        self._server.close()
        self._loop.stop()


# --- IMAP / SMTP ---------------------------------------------------------------------------------

class MailServer:
    def __init__(self, user: str, password: str):
        from mail_devel.service import Service

        self.user, self.password = user, password
        self.imap_port, self.smtp_port = free_port(), free_port()
        args = Service.parse(["--host", "127.0.0.1", "--imap-port", str(self.imap_port), "--smtp-port",
                              str(self.smtp_port), "--no-http", "--user", user, "--password", password])
        self._ready = threading.Event()
        self._loop = _LoopThread()
        self._stop = None

        async def main():
            self._stop = asyncio.Event()
            service = await Service.init(args)
            async with service.start():
                self._ready.set()
                await self._stop.wait()

        self._future = asyncio.run_coroutine_threadsafe(main(), self._loop.loop)
        if not self._ready.wait(20):
            raise RuntimeError("mail-devel did not start")

    def send(self, sender: str, subject: str, attachments: dict[str, bytes], body: str = "Report attached") -> None:
        import smtplib
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, self.user, subject
        msg.set_content(body)
        for name, data in attachments.items():
            maintype, subtype = ("application", "xml") if name.endswith(".xml") else ("text", "csv")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)

    def stop(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._future.result(5)
        finally:
            self._loop.stop()


# --- PSP list API + alert sink (Slack webhooks, PagerDuty's Events API, any JSON POST) -------------------------------------------------------------------

class FakePsp:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.port = free_port()
        self.objects: list[dict] = []
        self.rate_limit_every = 0        # answer 429 to every Nth list request (0: never)
        self.requests: list[dict] = []
        self.posts: list[tuple[str, bytes]] = []
        self._count = 0
        self._lock = threading.Lock()
        psp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload, headers: dict | None = None):
                body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=2).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                             **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                psp.posts.append((self.path, data))
                if self.path == "/v2/enqueue":          # PagerDuty's Events API v2 answers 202 with the dedup key
                    event = json.loads(data)
                    return self._send(202, {"status": "success", "message": "Event processed",
                                            "dedup_key": event.get("dedup_key") or "generated"})
                self._send(200, b"ok", {"Content-Type": "text/plain"})

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with psp._lock:
                    psp._count += 1
                    n = psp._count
                    psp.requests.append({"path": url.path, "query": query})
                auth = self.headers.get("Authorization", "")
                user = base64.b64decode(auth[6:]).decode().split(":")[0] if auth.startswith("Basic ") else ""
                if user != psp.api_key:
                    return self._send(401, {"error": {"type": "invalid_request_error",
                                                      "message": f"Invalid API Key provided: {user[:8]}****"}})
                if psp.rate_limit_every and n % psp.rate_limit_every == 0:
                    return self._send(429, {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
                                      {"Retry-After": "1"})
                if url.path != "/v1/balance_transactions":
                    return self._send(404, {"error": {"message": f"Unrecognized request URL {url.path}"}})
                self._send(200, psp.page(query))

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def page(self, query: dict) -> dict:
        gte, lt = int(query.get("created[gte]", 0)), int(query.get("created[lt]", 2**62))
        limit = int(query.get("limit", 10))
        rows = sorted((o for o in self.objects if gte <= o["created"] < lt), key=lambda o: (-o["created"], o["id"]))
        if "starting_after" in query:
            ids = [o["id"] for o in rows]
            rows = rows[ids.index(query["starting_after"]) + 1:]
        return {"object": "list", "url": "/v1/balance_transactions", "has_more": len(rows) > limit,
                "data": rows[:limit]}

    def add_transactions(self, prefix: str, created: list[int], amount: int = 1000) -> list[dict]:
        new = [{"id": f"txn_{prefix}_{i:04d}", "object": "balance_transaction", "amount": amount + i,
                "available_on": t + 2 * 86400, "created": t, "currency": "eur", "description": f"Order {prefix}-{i}",
                "exchange_rate": None, "fee": 29 + i % 7, "fee_details": [], "net": amount + i - 29 - i % 7,
                "reporting_category": "charge", "source": f"ch_{prefix}_{i:04d}", "status": "available",
                "type": "charge"} for i, t in enumerate(created)]
        self.objects += new
        return new

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.2)
