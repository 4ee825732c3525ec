"""Card numbers (PANs) in text, in plain Python: the driver's and the webhook receiver's twin of the JVM function
``jobs/jvm/psp/recon/MaskCardNumbers.java`` (``jobs.privacy.mask_card_numbers``), which masks every column the
parsers write. A card number is any 13-19 digit window (single spaces or dashes allowed between digits) that
starts where a digit group starts, is not followed by a digit and passes the Luhn check; it is masked to its
first 6 and last 4 digits."""
from __future__ import annotations

import hashlib
import json
import re


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of every 13-19 digit window that starts where a digit group starts, may contain single
    spaces or dashes between digits, is not followed by a digit, and passes the Luhn check."""
    found, n = [], len(text)
    isdigit = lambda k: "0" <= text[k] <= "9"  # noqa: E731 - ASCII digits only, as the JVM function
    for i in range(n):
        if not isdigit(i) or (i and isdigit(i - 1)):
            continue
        digits, j = "", i
        while j < n and len(digits) < 19:
            if isdigit(j):
                digits += text[j]
                j += 1
                if 13 <= len(digits) and (j >= n or not isdigit(j)) and luhn_ok(digits):
                    found.append((i, j))
            elif text[j] in " -" and j + 1 < n and isdigit(j + 1) and digits:
                j += 1
            else:
                break
    return found


MAX_REPLACED_WINDOWS = 64      # psp.recon.MaskCardNumbers.MAX_REPLACED_WINDOWS


def mask_text(text: str | None) -> str | None:
    """Python twin of ``mask_card_numbers`` for messages built on the driver (details, notes)."""
    if not text:
        return text
    windows = card_windows(text)
    if len(windows) > MAX_REPLACED_WINDOWS:       # as the JVM function: middle digits masked in place
        out = list(text)
        for a, b in windows:
            positions = [i for i in range(a, b) if "0" <= text[i] <= "9"]
            for i in positions[6:-4]:
                out[i] = "*"
        return "".join(out)
    digit_count = lambda w: sum("0" <= ch <= "9" for ch in text[w[0]:w[1]])  # noqa: E731
    chunks = [text[a:b] for a, b in sorted(windows, key=lambda w: (-digit_count(w), w[0]))]  # most digits first
    for chunk in chunks:
        digits = re.sub(r"[ -]", "", chunk)
        text = text.replace(chunk, digits[:6] + "*" * (len(digits) - 10) + digits[-4:])
    return text


def mask_json_payload(payload: bytes) -> bytes:
    """A JSON document (a webhook event) with every card number masked: in string values and keys, and a number
    value that is a card number becomes its masked text. Returns ``payload`` itself, byte for byte, when it holds
    none (the usual case); else the document re-serialised (compact, key order kept)."""
    text = payload.decode("utf-8")
    if mask_text(text) == text:
        return payload

    def walk(value):
        if isinstance(value, str):
            return mask_text(value)
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            masked = mask_text(str(value))
            return value if masked == str(value) else masked
        if isinstance(value, list):
            return [walk(v) for v in value]
        return {mask_text(k): walk(v) for k, v in value.items()}

    masked = json.dumps(walk(json.loads(text)), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if mask_text(masked.decode("utf-8")) != masked.decode("utf-8"):   # e.g. digits split over JSON syntax
        raise ValueError("a card number remains in the masked payload")
    return masked


def card_free_key(key: str) -> str:
    """An idempotency key to store: ``key`` itself when it holds no card number, else its SHA-256 (stable, so a
    PSP's retry still finds it, and unlike a masked key never the same for two different keys)."""
    return key if mask_text(key) == key else "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
