"""Webhook authentication: Stripe's ``Stripe-Signature`` and Adyen's HMAC, with the HTTP status to
answer when a request fails it.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 under the endpoint secret (``whsec_...``) and sends
``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]``; during a secret roll it sends one ``v1``
per secret, and the connection may hold several secrets (comma-separated). A valid signature on a
timestamp older than the tolerance is a replay of a captured request. Adyen signs each notification
item: HMAC-SHA256 (hex key) over ``pspReference:originalReference:merchantAccountCode:
merchantReference:value:currency:eventCode:success``, base64, in ``additionalData.hmacSignature``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from typing import Any

BAD_REQUEST, UNAUTHORIZED, CONFLICT = 400, 401, 409
ADYEN_SIGNED_FIELDS = ("pspReference", "originalReference", "merchantAccountCode", "merchantReference",
                       "value", "currency", "eventCode", "success")


class WebhookRejected(Exception):
    """A request we refuse; ``status`` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class VerifiedEvent:
    event_key: str            # the PSP's idempotency key
    event_type: str | None
    payload: bytes            # the event as the PSP sent it (Stripe: the raw body; Adyen: the raw item)
    signature_sha256: str     # digest of what authenticated it (to tell a replay from a PSP retry)


def card_free(event: VerifiedEvent) -> VerifiedEvent:
    """The event as the inbox stores it, once its signature was verified on the original bytes: card numbers
    masked in the payload (``jobs.cards.mask_json_payload``; the same bytes when it holds none) and an idempotency
    key holding one replaced by its digest. A PSP's retry of the event maps to the same key."""
    from jobs.cards import card_free_key, mask_json_payload

    return replace(event, event_key=card_free_key(event.event_key), payload=mask_json_payload(event.payload))


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def parse_stripe_header(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise WebhookRejected(BAD_REQUEST, "missing Stripe-Signature header")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not timestamp.isdigit():
        raise WebhookRejected(BAD_REQUEST, "Stripe-Signature header has no valid timestamp (t=...)")
    if not signatures:
        raise WebhookRejected(BAD_REQUEST, "Stripe-Signature header has no v1 signature")
    return int(timestamp), signatures


def stripe_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_stripe(header: str | None, body: bytes, secrets: list[str], tolerance_seconds: int,
                  now: float) -> VerifiedEvent:
    timestamp, signatures = parse_stripe_header(header)
    expected = [stripe_signature(s, timestamp, body) for s in secrets]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise WebhookRejected(UNAUTHORIZED, "Stripe signature does not match the endpoint secret")
    if tolerance_seconds and abs(now - timestamp) > tolerance_seconds:
        raise WebhookRejected(CONFLICT, f"replay refused: signed timestamp is {int(now - timestamp)} s old "
                                        f"(tolerance {tolerance_seconds} s)")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(BAD_REQUEST, f"body is not JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise WebhookRejected(BAD_REQUEST, "Stripe event has no id")
    return VerifiedEvent(event["id"], event.get("type"), body, _sha(f"{timestamp}:{','.join(sorted(signatures))}"))


def adyen_signature(item: dict[str, Any], hmac_key_hex: str) -> str:
    amount = item.get("amount") or {}
    values = {**item, "value": amount.get("value", ""), "currency": amount.get("currency", "")}
    signing = ":".join("" if values.get(f) is None else str(values[f]) for f in ADYEN_SIGNED_FIELDS)
    key = binascii.a2b_hex(hmac_key_hex)
    return base64.b64encode(hmac.new(key, signing.encode("utf-8"), hashlib.sha256).digest()).decode()


def verify_adyen(body: bytes, hmac_keys: list[str]) -> list[VerifiedEvent]:
    """Every notification item must carry a valid HMAC, else the whole request is refused."""
    from jobs.ingest.jsonlines import raw_array_items

    try:
        text = body.decode("utf-8")
        raw_items = raw_array_items(text, "notificationItems")
        items = [json.loads(r) for r in raw_items]
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise WebhookRejected(BAD_REQUEST, f"not an Adyen notification (notificationItems): {exc}") from None
    if not items:
        raise WebhookRejected(BAD_REQUEST, "Adyen notification has no items")
    events = []
    for raw, wrapper in zip(raw_items, items):
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        if not isinstance(item, dict) or not item.get("pspReference") or not item.get("eventCode"):
            raise WebhookRejected(BAD_REQUEST, "notification item without NotificationRequestItem/pspReference/eventCode")
        given = (item.get("additionalData") or {}).get("hmacSignature")
        if not given:
            raise WebhookRejected(UNAUTHORIZED, f"notification item {item['pspReference']} has no hmacSignature")
        try:
            valid = any(hmac.compare_digest(adyen_signature(item, k), given) for k in hmac_keys)
        except (binascii.Error, ValueError):
            raise WebhookRejected(UNAUTHORIZED, "the configured Adyen HMAC key is not hex") from None
        if not valid:
            raise WebhookRejected(UNAUTHORIZED, f"HMAC of notification item {item['pspReference']} does not match")
        key = f"{item['eventCode']}:{item['pspReference']}:{item.get('success', '')}"
        events.append(VerifiedEvent(key, item["eventCode"], raw.encode("utf-8"), _sha(given)))
    return events
