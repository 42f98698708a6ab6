"""The wire codec (runtime/jsoncodec.py): the same objects as the standard library's json,
the same errors, and the session's requests and watches go through it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from credsmith.runtime import jsoncodec
from credsmith.runtime.session import ApiSession
from tests.unit.runtime.test_runtime_session import Configuration, serve

# An API object as the operator sends and reads them: nesting, lists, numbers, booleans,
# null, non-ASCII text, escapes, and a tuple (the snapshots' owner references are tuples).
OBJECT: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "sac-00001",
        "annotations": {"credsmith.io/parameters": '{"length":48}', "note": "Zürich \u2713"},
        "ownerReferences": ({"controller": True, "uid": "a8-47"},),
        "generation": 9007199254740993,  # beyond a double's exact integers
    },
    "data": {"url": "aHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20=", "empty": ""},
    "status": {"conditions": [{"status": "True", "reason": None, "weight": 0.5}]},
    "lines": 'a\nb\t"c"\\',
}


def test_what_it_writes_the_standard_library_reads_as_the_same_object() -> None:
    encoded = jsoncodec.dumps(OBJECT)
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == json.loads(json.dumps(OBJECT))
    assert json.loads(jsoncodec.dumps_text(OBJECT)) == json.loads(json.dumps(OBJECT))


def test_what_the_standard_library_writes_it_reads_as_the_same_object() -> None:
    for text in (json.dumps(OBJECT), json.dumps(OBJECT, ensure_ascii=False)):
        assert jsoncodec.loads(text.encode()) == json.loads(text)
        assert jsoncodec.loads(text) == json.loads(text)


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a": 1}\n{"b": 2}', b"\xff", b"nan"])
def test_malformed_input_raises_what_json_raises(bad: bytes) -> None:
    # The informers and the session catch ValueError (json.JSONDecodeError is one).
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(bad)


def test_the_sessions_requests_and_watches_go_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    dumps, loads = jsoncodec.dumps, jsoncodec.loads

    def counted_dumps(value: Any) -> bytes:
        calls.append("dumps")
        return dumps(value)

    def counted_loads(data: bytes | str) -> Any:
        calls.append("loads")
        return loads(data)

    monkeypatch.setattr(jsoncodec, "dumps", counted_dumps)
    monkeypatch.setattr(jsoncodec, "loads", counted_loads)
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b'{"type": "ADDED", "object": {"kind": "Secret"}}\n')
            return response
        received.append(await request.read())
        return web.json_response({"metadata": {"resourceVersion": "7"}})

    async def test(session: ApiSession, configuration: Configuration) -> None:
        answer = await session.request("POST", "/api/v1/namespaces/a/secrets", body=OBJECT)
        assert answer == {"metadata": {"resourceVersion": "7"}}
        events = [e async for e in session.watch("/api/v1/secrets", {}, idle_timeout=5)]
        assert events == [{"type": "ADDED", "object": {"kind": "Secret"}}]

    serve(handler, test)
    assert calls == ["dumps", "loads", "loads"]
    assert received == [dumps(OBJECT)]
