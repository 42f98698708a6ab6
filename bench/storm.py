"""Phase "rotation storm" (issue 24, item 4): N credentials with a short period, created at
once, and when each rotates.

N ServiceAccountCredentials of the bench's shape (phases.sac) but `rotation: {period: P}`
(default 2m, no overlap) are created at once on a fresh operator. A watch on the namespace
records, per credential, `status.rotatedAt` of revision 1 (the issue) and of revision 2 (the
first scheduled rotation), and when this process saw each. Meanwhile the API server's
/metrics are read every second: `apiserver_request_total` of the write verbs (every client)
and the operator's own writes (its flow schemas, cluster_setup.py), as a rate per second.

Reported: the rotations per second of `rotatedAt` (the operator's clock, whole seconds):
first..last second, the busiest second and its share of N (goal: over at least 12 s, never
more than a fifth in one second); the same for the issue, to show how "together" the
credentials were made; each credential's delay past its period (rotatedAt of revision 2 -
rotatedAt of revision 1 - P: the spread by UID plus the operator's lag); and the write rate
while they rotated.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cluster_setup import operator_requests
from kubeclient import Api, parse_request_totals, sac_path
from phases import Context, _wait, names, run_pool, sac

from credsmith.reconcile.consumers import rotation_spread

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")


def storm_sac(name: str, period: str) -> dict[str, Any]:
    body = sac(name)
    body["spec"]["rotation"] = {"period": period}
    return body


def _seconds(text: str) -> int:
    """An RFC 3339 timestamp of whole seconds (status) as a POSIX second."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class RevisionWatch:
    """rotatedAt (as POSIX seconds) and the time seen, per name and revision."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.rotated: dict[int, dict[str, int]] = {1: {}, 2: {}}
        self.seen: dict[int, dict[str, float]] = {1: {}, 2: {}}
        self.uids: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listing = await self.api.list_json(sac_path(self.namespace))
        self._task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    def _record(self, obj: Mapping[str, Any]) -> None:
        status = obj.get("status") or {}
        revision, rotated_at = status.get("revision"), status.get("rotatedAt")
        if revision not in self.rotated or not isinstance(rotated_at, str):
            return
        name = obj["metadata"]["name"]
        self.uids[name] = obj["metadata"]["uid"]
        if name not in self.rotated[revision]:
            self.rotated[revision][name] = _seconds(rotated_at)
            self.seen[revision][name] = time.time()

    async def _run(self, rv: str) -> None:
        while True:
            path = (
                sac_path(self.namespace)
                + f"?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=3600"
            )
            async for kind, obj in self.api.watch(path):
                if kind == "ERROR":
                    raise RuntimeError(f"watch error: {obj}")
                rv = obj["metadata"]["resourceVersion"]
                if kind in ("ADDED", "MODIFIED"):
                    self._record(obj)

    async def wait_rotated(self, wanted: set[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while not wanted <= self.rotated[2].keys():
            if self._task is not None and self._task.done():
                self._task.result()
                raise RuntimeError("the watch ended")
            if time.monotonic() > deadline:
                missing = len(wanted - self.rotated[2].keys())
                raise TimeoutError(f"{missing} of {len(wanted)} not rotated after {timeout:.0f}s")
            await asyncio.sleep(0.5)
        return time.monotonic()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class WriteRate:
    """The API server's write requests per second (all clients, and the operator's own)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.samples: list[tuple[float, float, float]] = []  # (wall time, all, operator)
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        text = await self.api.metrics_text()
        totals = parse_request_totals(text)
        writes = sum(v for (verb, _), v in totals.items() if verb in WRITE_VERBS)
        own = (await operator_requests(self.api)).get("writes", 0.0)
        self.samples.append((time.time(), writes, own))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self._sample()
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def rates(self, start: float, end: float) -> dict[str, Any]:
        """Writes per second between two wall times (whole-second bounds, inclusive)."""
        inside = [s for s in self.samples if start - 1 <= s[0] <= end + 1]
        steps = []
        for (t0, all0, own0), (t1, all1, own1) in itertools.pairwise(inside):
            if t1 > t0:
                steps.append(((all1 - all0) / (t1 - t0), (own1 - own0) / (t1 - t0)))
        if not steps:
            return {}
        span = inside[-1][0] - inside[0][0]
        return {
            "window_s": round(span, 1),
            "all_max_per_s": round(max(s[0] for s in steps), 1),
            "all_mean_per_s": round((inside[-1][1] - inside[0][1]) / span, 1) if span else 0,
            "operator_max_per_s": round(max(s[1] for s in steps), 1),
            "operator_mean_per_s": round((inside[-1][2] - inside[0][2]) / span, 1) if span else 0,
            "operator_writes": round(inside[-1][2] - inside[0][2]),
        }


def histogram(seconds: Mapping[str, int]) -> dict[str, Any]:
    """How many fell in each second: first..last, the busiest second and its share."""
    per_second = Counter(seconds.values())
    first, last = min(per_second), max(per_second)
    busiest = max(per_second.values())
    return {
        "first": first,
        "last": last,
        "span_s": last - first + 1,  # seconds from the first to the last, both counted
        "seconds_with_any": len(per_second),
        "max_in_one_second": busiest,
        "max_share": round(busiest / len(seconds), 3),
        "per_second": [per_second.get(t, 0) for t in range(first, last + 1)],
    }


async def rotation_storm(
    ctx: Context, n: int, period: str = "2m", period_s: int = 120, concurrency: int = 32
) -> dict[str, Any]:
    namespace = f"storm-{n}"
    await ctx.api.create_namespace(namespace)
    watch = RevisionWatch(ctx.api, namespace)
    await watch.start()
    rate = WriteRate(ctx.api)
    rate.start()
    wanted = names("sac", n)
    meter = ctx.meter()
    started = time.monotonic()

    async def create(api: Api, name: str) -> None:
        await api.create_sac(namespace, storm_sac(name, period))

    try:
        created = await run_pool(ctx.credentials, concurrency, wanted, create)
        await _wait(ctx, watch.wait_rotated(set(wanted), period_s + ctx.ready_timeout))
        waited = time.monotonic() - started
        await asyncio.sleep(2)  # the last writes into the rate's window
    finally:
        cpu = meter.stop()
        await rate.stop()
        await watch.stop()
    issued, rotated = watch.rotated[1], watch.rotated[2]
    storm = histogram(rotated)
    delays = Counter(rotated[k] - issued[k] - period_s for k in rotated if k in issued)
    lag = [watch.seen[2][k] - rotated[k] for k in rotated]
    # The operator's spread of each (by UID, consumers.rotation_spread), and how late each
    # rotation was past its own scheduled second: the spread alone, as if all had been
    # issued in one second, and the operator's lag behind its schedule.
    period_td = timedelta(seconds=period_s)
    spreads = {
        k: int(rotation_spread(uid, period_td).total_seconds()) for k, uid in watch.uids.items()
    }
    by_spread = Counter(spreads.get(k, 0) for k in rotated)
    late = sorted(rotated[k] - issued[k] - period_s - spreads[k] for k in rotated if k in issued)
    return {
        "n": n,
        "namespace": namespace,
        "period": period,
        "create_s": round(created, 1),
        "wall_s": round(waited, 1),
        "issued": histogram(issued),
        "rotated": storm,
        # rotatedAt(2) - rotatedAt(1) - period, in whole seconds: spread + the operator's lag
        "delay_after_period": dict(sorted(delays.items())),
        # per second of spread (0, 1, ...): how many; as if issued in one second
        "spread_by_uid": [by_spread.get(t, 0) for t in range(max(by_spread) + 1)],
        "late_after_schedule_s": {
            "median": late[len(late) // 2],
            "p90": late[int(len(late) * 0.9)],
            "max": late[-1],
        },
        "seen_after_rotated_at_s": {
            "median": round(sorted(lag)[len(lag) // 2], 1),
            "max": round(max(lag), 1),
        },
        "writes_during_rotation": rate.rates(storm["first"], storm["last"] + 1),
        "writes_during_issue": rate.rates(
            histogram(issued)["first"], histogram(issued)["last"] + 1
        ),
        "cpu": cpu,
    }


def rows(result: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """Table rows for run.py: (measure, value, ok, others, detail)."""
    if not result:
        return []
    storm, issued = result["rotated"], result["issued"]
    writes = result.get("writes_during_rotation") or {}
    n = result["n"]
    spread_ok = storm["span_s"] >= 12 and storm["max_in_one_second"] <= n / 5
    return [
        (
            f"rotation storm N={n}: spread",
            f"{storm['span_s']} s",
            "yes" if spread_ok else "NO",
            _others(result["cpu"]),
            f"period {result['period']}, rotatedAt over {storm['seconds_with_any']} seconds, "
            f"busiest second {storm['max_in_one_second']} ({100 * storm['max_share']:.1f}%); "
            f"issued over {issued['span_s']} s (busiest {issued['max_in_one_second']})",
        ),
        (
            f"  by the spread alone N={n}",
            f"{len(result['spread_by_uid'])} s",
            "",
            "",
            f"as if all were issued in one second: busiest second "
            f"{max(result['spread_by_uid'])} ({100 * max(result['spread_by_uid']) / n:.1f}%); "
            f"rotations late after their scheduled second (s): {result['late_after_schedule_s']}",
        ),
        (
            f"  writes while rotating N={n}",
            f"{writes.get('all_max_per_s', 0):.0f}/s",
            "",
            "",
            f"max per second, all clients (mean {writes.get('all_mean_per_s', 0):.0f}/s); the "
            f"operator's max {writes.get('operator_max_per_s', 0):.0f}/s, mean "
            f"{writes.get('operator_mean_per_s', 0):.0f}/s; delay after the period "
            f"(s: count) {result['delay_after_period']}",
        ),
    ]


def _others(cpu: dict[str, float]) -> str:
    return f"{cpu['others'] / cpu['wall']:.2f}" if cpu.get("wall") else "-"
