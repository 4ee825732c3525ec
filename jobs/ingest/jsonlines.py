"""JSON Lines for the raw zone: the PSP's own JSON objects, byte for byte, one per line.

Landing must not change what the PSP sent, yet JSON Lines needs one object per line, and PSPs send
pretty-printed JSON (Stripe's webhook bodies span many lines). ``minify`` therefore removes only the
whitespace *between* tokens (insignificant in JSON); strings, numbers, key order and escapes stay
exactly as received. ``raw_array_items`` cuts the elements of one array out of a response body as
they were written, without re-serialising them (no float or unicode re-formatting).
"""
from __future__ import annotations

import json
import re

_TOKEN_OR_SPACE = re.compile(r'"(?:[^"\\]|\\.)*"|[ \t\n\r]+', re.DOTALL)
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def minify(text: str) -> str:
    """The same JSON text without whitespace between tokens (strings untouched)."""
    return _TOKEN_OR_SPACE.sub(lambda m: m.group() if m.group().startswith('"') else "", text)


def _skip(text: str, i: int) -> int:
    return _WS.match(text, i).end()


def _expect(text: str, i: int, char: str) -> int:
    if i >= len(text) or text[i] != char:
        raise ValueError(f"malformed JSON: expected {char!r} at offset {i}")
    return i + 1


def raw_array_items(text: str, key: str) -> list[str]:
    """The raw text of each element of the array ``key`` of the top-level object in ``text``."""
    i = _expect(text, _skip(text, 0), "{")
    while True:
        i = _skip(text, i)
        if i < len(text) and text[i] == "}":
            raise KeyError(f"no {key!r} array in the JSON object")
        name, i = json.decoder.scanstring(text, _expect(text, i, '"'))
        i = _skip(text, _expect(text, _skip(text, i), ":"))
        if name == key:
            return _array_items(text, i)
        _, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i += 1


def _array_items(text: str, i: int) -> list[str]:
    i = _expect(text, i, "[")
    items = []
    while True:
        i = _skip(text, i)
        if i < len(text) and text[i] == "]":
            return items
        _, end = _DECODER.raw_decode(text, i)
        items.append(text[i:end])
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i += 1


def jsonl(objects_text: list[str]) -> bytes:
    """One minified object per line, each line ending in a newline (UTF-8)."""
    return "".join(minify(t) + "\n" for t in objects_text).encode("utf-8")
