"""Test options shared by all suites. Cluster fixtures live in tests/e2e/conftest.py.

`--kubeconfig` (defined by pytest-kind, with the same meaning here) points the e2e
tests at an existing cluster.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("credsmith").addoption(
        "--kind-cluster",
        action="store_true",
        default=False,
        help="run e2e tests in a kind cluster from pytest-kind's kind_cluster fixture "
        "(needs Docker and a kind binary: --kind-bin)",
    )
