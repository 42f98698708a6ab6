"""The operator's CPU per API request, without a cluster: its HTTP client path alone.

    .venv/bin/python bench/http_cpu.py                  # the default asyncio loop
    .venv/bin/python bench/http_cpu.py --loop uvloop    # the loop `credsmith run` uses

A local HTTPS server (aiohttp, a self-signed certificate, in a process of its own) answers
every request with a body the size of the API server's answer to a Secret create (~2 KB of
JSON); the client is the operator's own `runtime.session.ApiSession`, `concurrency` requests
at a time as the operator's workers make them, each POSTing a Secret-sized body. Shown: the
client process's CPU per request (`time.process_time`), which is what the operator spends on
each of the three writes of an issued credential, and a watch stream's CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import socket
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BODY = {"metadata": {"name": "sac-00001", "namespace": "bulk", "annotations": {
    f"credsmith.io/a{i}": "x" * 40 for i in range(12)}}, "data": {"k": "y" * 400}}  # fmt: skip
RESPONSE = json.dumps({**BODY, "padding": "z" * 700}).encode()
EVENT = json.dumps({"type": "ADDED", "object": {**BODY, "padding": "z" * 700}}).encode() + b"\n"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _serve(port: int, cert: Path, key: Path, events: int) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=RESPONSE, content_type="application/json")

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        for i in range(0, events, 50):
            await response.write(EVENT * min(50, events - i))
        return response

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_route("GET", "/watch", watch)
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None)


class _Configuration:
    def __init__(self, port: int, cert: Path) -> None:
        self.host = f"https://localhost:{port}"
        self.ssl_ca_cert = str(cert)
        self.cert_file = self.key_file = None
        self.verify_ssl = True

    def auth_settings(self) -> dict[str, Any]:
        return {"BearerToken": {"in": "header", "key": "authorization", "value": "Bearer t"}}


async def _measure(port: int, cert: Path, requests: int, concurrency: int) -> tuple[float, float]:
    from credsmith.runtime.session import ApiSession

    session = ApiSession(_Configuration(port, cert), pool_size=32)
    try:
        for _ in range(100):  # connect, warm
            await session.request("POST", "/api/v1/namespaces/bulk/secrets", body=BODY)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                await session.request("POST", "/api/v1/namespaces/bulk/secrets", body=BODY)

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        per_request = (time.process_time() - started) / requests
        started = time.process_time()
        count = 0
        async for _ in session.watch("/watch", {}, idle_timeout=30):
            count += 1
        per_event = (time.process_time() - started) / max(count, 1)
        return per_request, per_event
    finally:
        await session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="requests (and watch events)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _certificate(Path(tmp))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = multiprocessing.Process(target=_serve, args=(port, cert, key, args.n))
        server.start()
        try:
            time.sleep(1.5)
            factory = None
            if args.loop == "uvloop":
                import uvloop

                factory = uvloop.new_event_loop
            runs = []
            for _ in range(args.repeat):
                with asyncio.Runner(loop_factory=factory) as runner:
                    runs.append(runner.run(_measure(port, cert, args.n, args.concurrency)))
        finally:
            server.terminate()
            server.join()
    request, event = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"{args.loop}, {args.n} requests, {args.concurrency} at a time, best of {args.repeat}:")
    print(f"  per request      {request * 1e6:6.1f} us CPU (client)")
    print(f"  per watch event  {event * 1e6:6.1f} us CPU (client)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
