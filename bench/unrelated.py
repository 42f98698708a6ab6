"""Unrelated Secrets: the operator's memory with and without many Secrets that are not its own.

The operator lists and watches only the Secrets labelled `app.kubernetes.io/managed-by=
credsmith` (the API server filters them), so Secrets of other people's workloads cost it
nothing. This phase proves it: with the N credentials of the bulk phase in place, a fresh
operator's settled RSS (A); then COUNT unlabelled Secrets are created in a namespace of their
own while it runs (its RSS after them: the watch delivered none); then a fresh operator
again (B), whose first listing is among them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from typing import Any

from kubeclient import Api
from phases import Context, restart, run_pool, settle

NAMESPACE = "unrelated-secrets"


def _secret(name: str) -> dict[str, Any]:
    # The size of a typical application Secret: a few keys of a few dozen bytes.
    value = base64.b64encode(os.urandom(48)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"app": "someone-else"}},
        "data": {"username": value[:16], "password": value, "url": value + value},
    }


async def _fresh_rss(ctx: Context, namespace: str, label: str) -> dict[str, Any]:
    """Restart the operator (a new resource created as it starts), let it settle for a
    while, and read its memory."""
    result = await restart(ctx, namespace, name=f"unrelated-{label}")
    await asyncio.sleep(10)
    await settle(ctx)
    return {"restart": result, "memory": ctx.operator.memory()}


async def measure(ctx: Context, namespace: str, count: int, concurrency: int) -> dict[str, Any]:
    """`namespace` holds the bulk phase's credentials; the operator is running."""
    without = await _fresh_rss(ctx, namespace, "a")
    ctx.log(f"unrelated Secrets: RSS without them {without['memory'].get('VmRSS', 0) >> 20} MiB")
    await ctx.api.create_namespace(NAMESPACE)
    started = time.monotonic()

    async def create(api: Api, name: str) -> None:
        await api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", _secret(name))

    try:
        names = [f"other-{i:05d}" for i in range(count)]
        await run_pool(ctx.credentials, concurrency, names, create)
        created_s = time.monotonic() - started
        await asyncio.sleep(10)
        running = ctx.operator.memory()
        ctx.log(f"unrelated Secrets: {count} created in {created_s:.0f}s")
        with_them = await _fresh_rss(ctx, namespace, "b")
    finally:
        cleanup = await ctx.api.delete_namespace(NAMESPACE)
    a = without["memory"].get("VmRSS", 0)
    b = with_them["memory"].get("VmRSS", 0)
    return {
        "count": count,
        "created_s": round(created_s, 1),
        "without": without,
        "running_after_create": running,
        "with": with_them,
        "rss_ratio": round(b / a, 3) if a else None,
        "cleanup_s": round(cleanup, 1),
    }
