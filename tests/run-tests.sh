#!/usr/bin/env bash
# `make test` and `make e2e`: every selected test, in pytest sessions that overlap.
#
#   - The tests not marked `serial` run in $PYTEST_WORKERS pytest-xdist workers (default
#     6: e2e tests mostly wait on the API server and the operator, so more workers than
#     cores pay off). The workers share one control plane (tests/e2e/shared.py); each
#     test has its own namespace and its own operator watching only that namespace.
#   - The tests marked `serial` need a cluster to themselves (they stop it, change what
#     every namespace sees, or count the API server's requests): they run one at a time
#     in a second session with its own control plane, meanwhile. Its output follows.
#   - The parallel session runs at a lower CPU priority (nice 10), so that the serial
#     session has the cores when it wants them: its tests marked `timing` measure
#     latencies (a rollout within seconds of its time), which a CPU shared evenly with six
#     busy workers would stretch. The parallel tests mostly wait, and yield little.
#
# Usage: tests/run-tests.sh [MARKER_EXPRESSION]   (e.g. e2e; default: every test)
# Exit status: 0 when every session passes (a session that selects no test, pytest's
# 5, counts as passing), else 1.
set -uo pipefail
cd "$(dirname "$0")/.."

pytest=${PYTEST:-.venv/bin/pytest}
workers=${PYTEST_WORKERS:-6}
select=${1:-}
narrowed() { if [[ -n $select ]]; then echo "($select) and ($1)"; else echo "$1"; fi; }

serial_log=$(mktemp "${TMPDIR:-/tmp}/credsmith-serial-tests.XXXXXX.log")
# A script's background job starts with SIGINT ignored; the shim restores it, so that a
# Ctrl-C (or the INT sent on TERM below) unwinds pytest's fixtures and stops the serial
# session's control plane (SIGTERM would kill pytest and leave the control plane running).
"${pytest%/*}/python" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$pytest" -m "$(narrowed 'serial')" >"$serial_log" 2>&1 &
serial_pid=$!
trap 'wait "$serial_pid"; exit 130' INT  # Ctrl-C reached both sessions: let it unwind
trap 'kill -INT "$serial_pid" 2>/dev/null; wait "$serial_pid"; exit 143' TERM
echo "serial tests: running meanwhile in a session of their own, output in $serial_log"

nice -n 10 "$pytest" -n "$workers" --dist loadgroup --durations=15 -m "$(narrowed 'not serial')"
parallel=$?
wait "$serial_pid"
serial=$?
trap - INT TERM

echo "==================== serial tests (their own session, run meanwhile) ===================="
cat "$serial_log"
passed() { [[ $1 -eq 0 || $1 -eq 5 ]]; }
echo "sessions: parallel exit $parallel, serial exit $serial"
passed "$parallel" && passed "$serial"
