"""Signed webhook requests as Stripe and Adyen send them, and a receiver process to send them to."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs.ingest.webhooks.signatures import adyen_signature, stripe_signature

from .servers import free_port, wait_http


def stripe_event(event_id: str, amount: int = 1000, created: int = 1763632800) -> bytes:
    """A Stripe event body, pretty-printed as Stripe sends it."""
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": created,
        "data": {"object": {"id": f"ch_{event_id[4:]}", "object": "charge", "amount": amount, "currency": "eur",
                            "balance_transaction": f"txn_{event_id[4:]}", "description": "Order \"ORD-1\"\nline 2",
                            "metadata": {"order_id": f"ORD-{event_id[-4:]}"}}},
        "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": "charge.succeeded",
    }, indent=2).encode()


def stripe_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    return {"Stripe-Signature": f"t={t},v1={stripe_signature(secret, t, body)}", "Content-Type": "application/json"}


def adyen_notification(hmac_hex: str, psp_reference: str, event_code: str = "AUTHORISATION", value: int = 1000,
                       forge: bool = False) -> bytes:
    item = {"amount": {"currency": "EUR", "value": value}, "eventCode": event_code,
            "eventDate": "2026-11-20T10:00:00+01:00", "merchantAccountCode": "AcmeEU",
            "merchantReference": f"ORD-{psp_reference[-4:]}", "paymentMethod": "visa",
            "pspReference": psp_reference, "reason": "", "success": "true"}
    signature = adyen_signature(item, hmac_hex)
    item["additionalData"] = {"hmacSignature": ("x" + signature[1:]) if forge else signature}
    return json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}, indent=4).encode()


class Receiver:
    """``recon webhooks serve`` in its own process (so a test can kill it like a crash would)."""

    def __init__(self, database_url: str, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RECON_DATABASE_URL": database_url}
        recon = Path(sys.executable).with_name("recon")
        self._log = log_path.open("w")
        self.proc = subprocess.Popen([str(recon), "webhooks", "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port)], env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_http(f"{self.url}/healthz", timeout=90)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"webhook receiver did not start: {log_path.read_text()[-2000:]}") from None

    def endpoint(self, tenant_id: str, connector_id: str) -> str:
        return f"{self.url}/webhooks/{tenant_id}/{connector_id}"

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as if the machine died."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()
