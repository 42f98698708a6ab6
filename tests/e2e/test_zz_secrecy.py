"""Runs last (file order): no issued secret value in anything the operator showed.

Every e2e test that reads one of our Secrets records its secret values; each test
namespace's Events and resource statuses are kept before it is deleted. Here they
are all searched, with the operator's DEBUG logs of the whole run, for any value,
as is, base64-encoded, or as a line of a PEM key.
"""

from __future__ import annotations

import pytest

from tests.e2e.cluster import Exposure, Operator


@pytest.mark.serial  # needs the whole session's records (xdist: tests/conftest.py checks them)
def test_no_issued_value_in_logs_events_or_status(
    exposure: Exposure, operator_process: Operator
) -> None:
    if len(exposure.values) < 5:
        pytest.skip("run with the other e2e tests: too few values were issued to check")
    logs = operator_process.logs()
    assert "DEBUG" in logs  # the logs really are at DEBUG
    assert "reconciled in" in logs
    assert exposure.leaks(logs) == [], "an issued value is in the operator's logs"
    shown = "\n".join(exposure.shown)
    assert '"kind": "Event"' in shown  # Events really were collected
    assert exposure.leaks(shown) == [], "an issued value is in an Event or a status"


def test_the_leak_detector_finds_values() -> None:
    exposure = Exposure(values={"s3cr3t-value-0123456789abcdefghij"})
    assert exposure.leaks("log: s3cr3t-value-0123456789abcdefghij")
    assert exposure.leaks("b64: czNjcjN0LXZhbHVlLTAxMjM0NTY3ODlhYmNkZWZnaGlq")
    assert not exposure.leaks("nothing here")
