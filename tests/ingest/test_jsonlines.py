"""JSON Lines for the raw zone keep the PSP's bytes: only whitespace between tokens goes."""
import json

import pytest

from jobs.ingest.jsonlines import jsonl, minify, raw_array_items

BODY = ('{\n  "object": "list",\n  "data": [\n    {"id": "txn_1", "amount": 1.10, "fee": 2e3, '
        '"description": "Caf\\u00e9  \\"Zum Anker\\", table 2\\n]}", "nested": {"a": [1, 2]}},\n'
        '    {"id": "txn_2", "amount": -0}\n  ],\n  "has_more": false\n}')


def test_items_are_cut_out_as_written_and_minified_without_touching_strings_or_numbers():
    items = raw_array_items(BODY, "data")
    assert items[1] == '{"id": "txn_2", "amount": -0}'
    lines = jsonl(items).decode().splitlines()
    assert lines[0] == ('{"id":"txn_1","amount":1.10,"fee":2e3,"description":"Caf\\u00e9  \\"Zum Anker\\", '
                        'table 2\\n]}","nested":{"a":[1,2]}}')
    assert json.loads(lines[0]) == json.loads(items[0])
    assert minify(BODY).count("\n") == 0 and json.loads(minify(BODY)) == json.loads(BODY)


def test_a_missing_array_or_broken_json_is_an_error():
    with pytest.raises(KeyError):
        raw_array_items('{"object": "list"}', "data")
    with pytest.raises(ValueError):
        raw_array_items('{"data": [ {"id": 1}, ', "data")
