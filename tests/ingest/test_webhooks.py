"""Signed webhooks: signature checks, the receiver process over real HTTP (forgeries and replays refused,
PSP retries stored once), batches landed by the connector, and a 10,000-request burst followed by a
crash of the receiver: every accepted event lands, none twice."""
from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
import requests

from jobs import storage
from jobs.ingest.jsonlines import minify
from jobs.ingest.tasks import run_connector
from jobs.ingest.webhooks.signatures import WebhookRejected, verify_adyen, verify_stripe
from reference.cards import card_numbers_in

from .conftest import ADYEN_HMAC_HEX, WHSEC
from .webhook_client import Receiver, adyen_notification, stripe_event, stripe_headers

pytestmark = pytest.mark.postgres
NOW = 1_763_632_800


# --- signatures (no server) -------------------------------------------------------------------------

def test_stripe_signature_checks():
    body = stripe_event("evt_sig_0001")
    header = stripe_headers(body, WHSEC, NOW)["Stripe-Signature"]
    event = verify_stripe(header, body, [WHSEC], 300, now=NOW + 10)
    assert (event.event_key, event.event_type, event.payload) == ("evt_sig_0001", "charge.succeeded", body)
    assert verify_stripe(header, body, ["whsec_old", WHSEC], 300, now=NOW).event_key == "evt_sig_0001"   # rolling
    cases = [(header, body.replace(b"1000", b"9000"), NOW, 401, "does not match"),                      # tampered
             (stripe_headers(body, "whsec_forged", NOW)["Stripe-Signature"], body, NOW, 401, "does not match"),
             (header, body, NOW + 301, 409, "replay refused: signed timestamp is 301 s old"),
             (None, body, NOW, 400, "missing Stripe-Signature"),
             ("t=abc,v1=00", body, NOW, 400, "no valid timestamp"),
             (f"t={NOW}", body, NOW, 400, "no v1 signature")]
    for hdr, payload, now, status, message in cases:
        with pytest.raises(WebhookRejected, match=message) as err:
            verify_stripe(hdr, payload, [WHSEC], 300, now=now)
        assert err.value.status == status


def test_adyen_hmac_checks():
    body = adyen_notification(ADYEN_HMAC_HEX, "8815000000000001")
    (event,) = verify_adyen(body, [ADYEN_HMAC_HEX])
    assert event.event_key == "AUTHORISATION:8815000000000001:true"
    assert json.loads(event.payload)["NotificationRequestItem"]["pspReference"] == "8815000000000001"
    with pytest.raises(WebhookRejected, match="HMAC of notification item 8815000000000001 does not match") as err:
        verify_adyen(adyen_notification(ADYEN_HMAC_HEX, "8815000000000001", forge=True), [ADYEN_HMAC_HEX])
    assert err.value.status == 401
    tampered = body.replace(b'"value": 1000', b'"value": 100000')
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_adyen(tampered, [ADYEN_HMAC_HEX])


# --- the receiver over HTTP ------------------------------------------------------------------------

@pytest.fixture
def webhook_connectors(add_connector):
    stripe = add_connector("stripe-hooks", "webhook", source="stripe", provider="stripe",
                           secret_conn_id="recon_stripe_whsec", tolerance_seconds=300)
    adyen = add_connector("adyen-hooks", "webhook", source="adyen", provider="adyen",
                          secret_conn_id="recon_adyen_hmac")
    return stripe, adyen


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_receiver_accepts_refuses_and_the_connector_lands_batches(
        receiver, webhook_connectors, settings, db, window, tenant_id):
    stripe, adyen = webhook_connectors
    url = receiver.endpoint(tenant_id, "stripe-hooks")
    first, second = stripe_event("evt_A0000001"), stripe_event("evt_A0000002", amount=2500)
    first_headers = stripe_headers(first, WHSEC)

    ok = post(url, first, first_headers)
    assert (ok.status_code, ok.json()) == (200, {"received": True, "outcome": "accepted"})
    retry = post(url, first, stripe_headers(first, WHSEC, int(time.time()) + 1))   # Stripe's retry: signed anew
    assert (retry.status_code, retry.json()["outcome"]) == (200, "duplicate")
    replay = post(url, first, first_headers)                                          # the same request again
    assert replay.status_code == 409 and "replay refused" in replay.json()["error"]
    stale = post(url, second, stripe_headers(second, WHSEC, int(time.time()) - 3600))
    assert stale.status_code == 409 and "s old (tolerance 300 s)" in stale.json()["error"]
    assert post(url, second, stripe_headers(second, "whsec_forged")).status_code == 401
    assert post(url, second.replace(b"2500", b"25"), stripe_headers(second, WHSEC)).status_code == 401
    assert post(url, second, {"Content-Type": "application/json"}).status_code == 400
    assert post(url, second, stripe_headers(second, WHSEC)).status_code == 200
    assert post(receiver.endpoint(tenant_id, "no-such-hooks"), second, stripe_headers(second, WHSEC)).status_code == 404
    assert requests.get(url, timeout=10).status_code == 405

    adyen_url = receiver.endpoint(tenant_id, "adyen-hooks")
    notification = adyen_notification(ADYEN_HMAC_HEX, "8815000000009001")
    assert (post(adyen_url, notification, {}).status_code, post(adyen_url, notification, {}).text) == (200, "[accepted]")
    forged = adyen_notification(ADYEN_HMAC_HEX, "8815000000009002", forge=True)
    assert post(adyen_url, forged, {}).status_code == 401

    for connector in (stripe, adyen):
        assert run_connector(connector.to_dict(), window, settings=settings)["landed"] == 1
        assert run_connector(connector.to_dict(), window, settings=settings)["landed"] == 0   # nothing new
    files = {r["file_name"]: r for r in db.execute(
        "SELECT file_name, source, raw_uri, remote_path, received_date FROM raw_file WHERE tenant_id = %s",
        (tenant_id,)).fetchall()}
    (stripe_file,) = [f for f in files if f.startswith("stripe_events_")]
    (adyen_file,) = [f for f in files if f.startswith("adyen_notifications_")]
    lines = storage.read_bytes(settings, files[stripe_file]["raw_uri"]).decode().splitlines()
    assert lines == [minify(first.decode()), minify(second.decode())]                    # PSP's JSON, one per line
    assert json.loads(lines[0])["data"]["object"]["description"] == "Order \"ORD-1\"\nline 2"
    (adyen_line,) = storage.read_bytes(settings, files[adyen_file]["raw_uri"]).decode().splitlines()
    assert json.loads(adyen_line)["NotificationRequestItem"]["pspReference"] == "8815000000009001"
    assert files[stripe_file]["source"] == "stripe" and str(files[stripe_file]["received_date"]) == "2026-11-20"
    assert files[stripe_file]["remote_path"].startswith("webhook:stripe-hooks/batch/")


# --- a burst, then a crash ------------------------------------------------------------------------

BURST = 10_000


async def _send_all(requests_to_send: list[tuple[str, bytes, dict]], concurrency: int = 64) -> list[int]:
    import aiohttp

    statuses = [0] * len(requests_to_send)
    queue = list(enumerate(requests_to_send))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            while queue:
                i, (url, body, headers) = queue.pop()
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    statuses[i] = resp.status
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def test_a_burst_of_10000_webhooks_then_a_crash_loses_nothing_and_lands_nothing_twice(
        add_connector, settings, db, window, tenant_id, migrated_db, tmp_path):
    c = add_connector("stripe-burst", "webhook", source="stripe", provider="stripe",
                      secret_conn_id="recon_stripe_whsec", batch_max_events=4000)
    receiver = Receiver(migrated_db, tmp_path / "receiver.log")
    try:
        url = receiver.endpoint(tenant_id, "stripe-burst")
        rng = random.Random(7)
        unique = [stripe_event(f"evt_B{i:07d}", amount=100 + i) for i in range(BURST - 600)]
        batch = [(url, body, stripe_headers(body, WHSEC)) for body in unique]
        picked = rng.sample(range(len(unique)), 400)          # retried and replayed events kept apart
        retries = [(url, unique[i], stripe_headers(unique[i], WHSEC, int(time.time()) + 5)) for i in picked[:300]]
        replays = [batch[i] for i in picked[300:]]
        forged = [(url, b, stripe_headers(b, "whsec_forged")) for b in rng.sample(unique, 200)]
        burst = batch + retries + forged + replays
        rng.shuffle(burst)
        assert len(burst) == BURST
        started = time.monotonic()
        statuses = asyncio.run(_send_all(burst))
        elapsed = time.monotonic() - started
    finally:
        receiver.kill()                         # right after the last answer: nothing in memory survives

    counts = {s: statuses.count(s) for s in set(statuses)}
    assert counts[401] == 200 and counts.get(500, 0) == 0 and counts.get(503, 0) == 0
    # a replay (identical request) is refused when the original was accepted first; if the replay happened
    # to arrive first, the original is the one refused: either way one of the pair is accepted
    assert counts[200] + counts.get(409, 0) == BURST - 200 and counts.get(409, 0) == 100
    accepted_ids = {json.loads(body)["id"] for (url_, body, headers), status in zip(burst, statuses) if status == 200}
    assert len(accepted_ids) == BURST - 600                      # every distinct event accepted (retries: duplicate)

    summary = run_connector(c.to_dict(), window, settings=settings)
    assert summary["landed"] == 3                                # 4000 + 4000 + 1400 events
    lines = [line for r in db.execute("SELECT raw_uri FROM raw_file WHERE tenant_id = %s", (tenant_id,)).fetchall()
             for line in storage.read_bytes(settings, r["raw_uri"]).decode().splitlines()]
    landed_ids = [json.loads(line)["id"] for line in lines]
    assert len(landed_ids) == len(set(landed_ids)) == BURST - 600 and set(landed_ids) == accepted_ids
    print(f"burst of {BURST} webhooks answered in {elapsed:.1f} s ({BURST / elapsed:.0f}/s)")


# --- no card number at rest -------------------------------------------------------------------------

def test_card_numbers_are_masked_before_the_inbox_commits_and_never_reach_the_raw_zone(
        receiver, webhook_connectors, settings, db, window, tenant_id):
    stripe, adyen = webhook_connectors
    event = json.dumps({"id": "evt_PAN00001", "object": "event", "type": "charge.failed", "created": NOW,
                        "data": {"object": {"id": "ch_PAN00001", "amount": 1000, "currency": "eur",
                                            "description": "card 4111 1111 1111 1111 declined, order ORD-77",
                                            "metadata": {"pan": 5500000000000004, "note": "3782-822463-10005"}}}},
                       indent=2).encode()
    assert len(card_numbers_in(event.decode())) == 3
    # signed over the bytes as sent: the receiver verifies those, then masks
    assert post(receiver.endpoint(tenant_id, "stripe-hooks"), event, stripe_headers(event, WHSEC)).status_code == 200
    notification = adyen_notification(ADYEN_HMAC_HEX, "4111111111111111")   # a pspReference that passes Luhn
    adyen_url = receiver.endpoint(tenant_id, "adyen-hooks")
    assert [post(adyen_url, notification, {}).text for _ in range(2)] == ["[accepted]"] * 2   # a PSP retry

    rows = db.execute("SELECT connector_id, event_key, payload FROM webhook_event WHERE tenant_id = %s ORDER BY event_pk",
                      (tenant_id,)).fetchall()
    assert [r["connector_id"] for r in rows] == ["stripe-hooks", "adyen-hooks"]   # the retry stored once
    stored = [r["event_key"] + " " + bytes(r["payload"]).decode() for r in rows]
    assert [card_numbers_in(s) for s in stored] == [[], []]
    assert rows[1]["event_key"].startswith("sha256:")
    kept = json.loads(bytes(rows[0]["payload"]))["data"]["object"]
    assert kept["description"] == "card 411111******1111 declined, order ORD-77"
    assert kept["metadata"] == {"pan": "550000******0004", "note": "378282*****0005"}
    for connector in (stripe, adyen):
        assert run_connector(connector.to_dict(), window, settings=settings)["landed"] == 1
    landed = [storage.read_bytes(settings, r["raw_uri"]).decode() for r in db.execute(
        "SELECT raw_uri FROM raw_file WHERE tenant_id = %s", (tenant_id,)).fetchall()]
    assert len(landed) == 2 and [card_numbers_in(text) for text in landed] == [[], []]
