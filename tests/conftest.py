"""Test options shared by all suites. Cluster fixtures live in tests/e2e/conftest.py.

`--kubeconfig` (defined by pytest-kind, with the same meaning here) points the e2e
tests at an existing cluster.

Under pytest-xdist, the hooks below run the secrecy check of tests/e2e/test_zz_secrecy.py
over the whole run: each worker has its own Exposure and operator logs, and a test
cannot be scheduled after all the others, so the workers hand theirs to the controller,
which checks them together once every worker has finished. (They are here because the
controller never loads tests/e2e/conftest.py: it collects nothing.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from xdist.scheduler import LoadGroupScheduling

from tests.e2e.cluster import EXPOSURE, OPERATOR_LOGS, Exposure

WORKER_RECORDS: list[dict[str, Any]] = []

# Modules whose tests share an expensive module-scoped fixture (checkov's scans, the
# image build, a Keycloak) or one that writes a shared path: every test of one goes to
# one xdist worker. (xdist's own `xdist_group` marker is lost with pytest 9, which no longer reads
# the node id xdist rewrites; and the controller sees node ids, not markers.)
ONE_WORKER_MODULES = {
    "tests/unit/packaging/test_packaging_checkov.py",
    "tests/e2e/test_image.py",
}
# Every test that needs Keycloak runs on one worker, whatever its module: one Keycloak per
# run (tests/providers/keycloak.py; a start costs a minute or more of CPU here).
KEYCLOAK = "keycloak"


def work_unit(nodeid: str) -> str | None:
    """The unit of work a test belongs to when it is not its own: its module's, or
    Keycloak's."""
    if KEYCLOAK in nodeid.lower():
        return KEYCLOAK
    module = nodeid.split("::", 1)[0]
    return module if module in ONE_WORKER_MODULES else None


class OneWorkerModules(LoadGroupScheduling):
    """xdist's loadgroup: each test is its own unit of work, except the modules above."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid) or super()._split_scope(nodeid)


# Where the controller keeps each test's duration in the last run that ran it (setup, call
# and teardown). The workers collect the units that took longest first, and xdist hands
# out units in that order (those of several tests first of all): no five-minute test
# starts when the others are nearly done and holds the session open alone.
DURATIONS_KEY = "credsmith/durations"
RUN_DURATIONS: dict[str, float] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    if not os.environ.get("PYTEST_XDIST_WORKER") or cache is None:
        return
    last = cache.get(DURATIONS_KEY, {})
    total: dict[str, float] = {}
    for nodeid, seconds in last.items() if isinstance(last, dict) else ():
        unit = work_unit(nodeid) or nodeid
        total[unit] = total.get(unit, 0.0) + seconds
    # Stable, and the same on every worker (xdist requires identical collections); a
    # unit's tests keep their order; tests never run before go last.
    items.sort(key=lambda item: -total.get(work_unit(item.nodeid) or item.nodeid, 0.0))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    RUN_DURATIONS[report.nodeid] = RUN_DURATIONS.get(report.nodeid, 0.0) + report.duration


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return OneWorkerModules(config, log) if config.getvalue("dist") == "loadgroup" else None


# Hypothesis's deadline is wall time per example; under pytest-xdist six workers share
# two cores, so it measures the neighbours, not the code (tests that set a deadline of
# their own keep it).
settings.register_profile("xdist", deadline=None)
if os.environ.get("PYTEST_XDIST_WORKER"):
    settings.load_profile("xdist")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("credsmith").addoption(
        "--kind-cluster",
        action="store_true",
        default=False,
        help="run e2e tests in a kind cluster from pytest-kind's kind_cluster fixture "
        "(needs Docker and a kind binary: --kind-bin)",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand over what it saw
        found = config.stash.get(EXPOSURE, None)
        logs = config.stash.get(OPERATOR_LOGS, None)
        if found is not None:
            record = {"values": sorted(found.values), "shown": found.shown, "logs": str(logs)}
            config.workeroutput["credsmith_exposure"] = json.dumps(record)
        return
    cache = getattr(config, "cache", None)
    if cache is not None and RUN_DURATIONS and config.getvalue("dist") == "loadgroup":
        kept = cache.get(DURATIONS_KEY, {})
        cache.set(DURATIONS_KEY, {**kept, **RUN_DURATIONS})
    if WORKER_RECORDS:  # the controller of an xdist run whose workers ran e2e tests
        problem = secrecy_problem(WORKER_RECORDS)
        if problem:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"secrecy check over all workers: {problem or 'no leak'}")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    record = getattr(node, "workeroutput", {}).get("credsmith_exposure")
    if record:
        WORKER_RECORDS.append(json.loads(record))


def secrecy_problem(records: list[dict[str, Any]]) -> str | None:
    """What test_no_issued_value_in_logs_events_or_status checks, over every worker's
    records: no issued value in an operator log, Event or status (values never told)."""
    exposure = Exposure(values={value for r in records for value in r["values"]})
    logs = "".join(
        path.read_text(errors="replace")
        for r in records
        for path in sorted(Path(r["logs"]).glob("operator-*.log"))
    )
    shown = "\n".join(text for r in records for text in r["shown"])
    if len(exposure.values) < 5:
        return None  # too few values issued to say anything (as the test skips)
    if "reconciled in" not in logs or '"kind": "Event"' not in shown:
        return "FAILED: the operator's DEBUG logs or the Events were not collected"
    if leaks := exposure.leaks(logs) + exposure.leaks(shown):
        return f"FAILED: issued values in logs, Events or status: {leaks}"
    return None
