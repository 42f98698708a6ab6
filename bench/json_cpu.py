"""The CPU of one issued credential's JSON, without a cluster: the wire codec alone.

    .venv/bin/python bench/json_cpu.py            # stdlib json against runtime/jsoncodec.py

What a bulk issue asks of the codec per credential (bench/README.md, "Operator CPU per
credential"): three request bodies encoded (the Secret create, the status merge patch, the
`Issued` Event) and five bodies decoded (the Secret create's and the status patch's
responses; the watch events of the resource's ADDED and status MODIFIED and of the Secret's
ADDED). The bodies are the pure reconcile's (bench/pass_cpu.py) with what the API server
adds (uid, resourceVersion, timestamps, managedFields as it writes them), so their sizes are
the real ones to within a few bytes. Also shown: the snapshots the informers make of the
decoded watch events (`from_api`), which no codec changes. Process CPU time, best of runs.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pass_cpu import KEY, NOW, resource
from phases import sac

from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.runtime import jsoncodec
from credsmith.runtime.writes import merge_patch

STAMP = "2026-12-06T22:00:00Z"


def _fields(obj: Any) -> dict[str, Any]:
    """managedFields' fieldsV1 of a JSON object, as the API server writes it."""
    if isinstance(obj, dict):
        return {".": {}, **{f"f:{k}": _fields(v) for k, v in obj.items()}}
    return {}


def _managed(manager: str, operation: str, body: dict[str, Any], sub: str = "") -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": body["apiVersion"],
        "time": STAMP,
        "fieldsType": "FieldsV1",
        "fieldsV1": {k: v for k, v in _fields(body).items() if k not in (".", "f:apiVersion")},
    }
    if sub:
        entry["subresource"] = sub
    return entry


def _served(body: dict[str, Any], version: int, managed: list[dict[str, Any]]) -> dict[str, Any]:
    """`body` as the API server returns it."""
    meta = {
        **body["metadata"],
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(version),
        "creationTimestamp": STAMP,
        "managedFields": managed,
    }
    return {**body, "metadata": meta}


def wire(name: str) -> tuple[list[Any], list[bytes]]:
    """One credential's request bodies (to encode) and response and watch bodies (to decode)."""
    created = sac(name)
    created["metadata"]["namespace"] = "bulk"
    decision = reconcile(SERVICE_ACCOUNT_CREDENTIAL, resource(name), None, NOW, state_key=KEY)
    assert decision.secret is not None
    secret = json.loads(json.dumps(decision.secret))
    status = json.loads(json.dumps(decision.status))
    patch = {"status": merge_patch({}, status)}
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": "bulk"},
        "involvedObject": {"apiVersion": created["apiVersion"], "kind": created["kind"],
                           "name": name, "namespace": "bulk", "uid": str(uuid.uuid4())},
        "type": "Normal", "reason": "Issued", "message": decision.events[0].message,
        "source": {"component": "credsmith"}, "reportingComponent": "credsmith.io/operator",
        "reportingInstance": "credsmith", "firstTimestamp": STAMP, "lastTimestamp": STAMP,
        "count": 1,
    }  # fmt: skip
    added = _served(created, 100, [_managed("python-aiohttp", "Update", created)])
    patched = {**added, "status": status}
    patched["metadata"] = {
        **added["metadata"],
        "resourceVersion": "102",
        "managedFields": [
            *added["metadata"]["managedFields"],
            _managed("python-aiohttp", "Update", {"apiVersion": created["apiVersion"],
                                                 **patch}, "status"),
        ],
    }  # fmt: skip
    written = _served(secret, 101, [_managed("python-aiohttp", "Update", secret)])
    encode = [secret, patch, event]
    decode = [
        json.dumps(written).encode(),  # the Secret create's response
        json.dumps(patched).encode(),  # the status patch's response
        json.dumps({"type": "ADDED", "object": added}).encode(),  # watch: the resource
        json.dumps({"type": "ADDED", "object": written}).encode(),  # watch: its Secret
        json.dumps({"type": "MODIFIED", "object": patched}).encode(),  # watch: its status
    ]
    return encode, decode


def codec_seconds(
    dumps: Callable[[Any], bytes],
    loads: Callable[[bytes], Any],
    credentials: list[tuple[list[Any], list[bytes]]],
) -> tuple[float, float]:
    """CPU seconds per credential: (encode its requests, decode its responses and events)."""
    started = time.process_time()
    for encode, _ in credentials:
        for body in encode:
            dumps(body)
    encoded = time.process_time() - started
    started = time.process_time()
    for _, decode in credentials:
        for line in decode:
            loads(line)
    decoded = time.process_time() - started
    n = len(credentials)
    return encoded / n, decoded / n


def snapshot_seconds(credentials: list[tuple[list[Any], list[bytes]]]) -> float:
    """CPU seconds per credential of the informers' snapshots (and the Secret response's)."""
    events = [[json.loads(line) for line in decode] for _, decode in credentials]
    started = time.process_time()
    for written, _, resource_added, secret_added, status_modified in events:
        SecretSnapshot.from_api(written)
        ResourceSnapshot.from_api(resource_added["object"])
        SecretSnapshot.from_api(secret_added["object"])
        ResourceSnapshot.from_api(status_modified["object"])
    return (time.process_time() - started) / len(events)


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # what session.py did before jsoncodec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="credentials")
    parser.add_argument("--repeat", type=int, default=5, help="runs; the fastest is shown")
    args = parser.parse_args()
    credentials = [wire(f"sac-{i:05d}") for i in range(args.n)]
    sizes = [len(line) for line in credentials[0][1]]
    print(f"per credential: 3 bodies encoded, 5 decoded ({sum(sizes)} bytes: {sizes})")
    codecs = {"json (stdlib)": (_stdlib_dumps, json.loads),
              "jsoncodec (orjson)": (jsoncodec.dumps, jsoncodec.loads)}  # fmt: skip
    for name, (dumps, loads) in codecs.items():
        runs = [codec_seconds(dumps, loads, credentials) for _ in range(args.repeat)]
        encode, decode = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"  {name:20} encode {encode * 1e6:6.1f} us  decode {decode * 1e6:6.1f} us"
              f"  total {(encode + decode) * 1e6:6.1f} us")  # fmt: skip
    snap = min(snapshot_seconds(credentials) for _ in range(args.repeat))
    print(f"  snapshots (from_api, 4)  {snap * 1e6:6.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
