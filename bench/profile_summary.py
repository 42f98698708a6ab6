"""Summarise a py-spy raw (collapsed stacks) profile: where the operator's time goes.

    .venv/bin/python bench/profile_summary.py bench/results/profiles/bulk-1000.txt

Prints the share of samples by package (the innermost frame of ours or a library's),
the top functions by self samples, and by inclusive samples. `run.py --profile`
records with `--gil`: only the thread holding the GIL is sampled, so the total is
the Python work that one core has to do.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")

PACKAGES = (
    ("credsmith/", "credsmith"),
    ("kopf/", "kopf"),
    ("kubernetes/", "kubernetes client"),
    ("urllib3/", "urllib3"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("pydantic", "pydantic"),
    ("jinja2/", "jinja2"),
    ("ssl.py", "ssl"),
    ("json/", "json"),
    ("asyncio/", "asyncio"),
    ("concurrent/", "threads"),
    ("threading.py", "threads"),
    ("logging/", "logging"),
)


def package_of(file: str) -> str:
    for marker, name in PACKAGES:
        if marker in file:
            return name
    return "other: " + file.rsplit("/", 1)[-1]


# --where: each sample to the first of these its stack passes through (else "other"), the
# parts of an issuing pass in the controller (bench/README.md, "Operator CPU per credential").
WHERE = (
    ("the reconcile pass (pure)", ("credsmith/reconcile/credential.py",)),
    (
        "the hand-off to a thread and back",
        ("to_thread (asyncio/threads.py", "concurrent/futures", "threading.py", "_chain_future"),
    ),
    ("Secret create", ("Writes.write_secret",)),
    ("status patch", ("Writes.patch_status",)),
    ("Event post", ("Writes.post_event",)),
    (
        "the rest of a pass and the worker",
        ("CredentialPass.", "Controller.reconcile", "Controller._worker"),
    ),
    ("informers", ("Informer.",)),
    (
        "responses and watch streams arriving",
        ("sslproto.py", "selector_events.py", "SSLProtocol", "aiohttp/"),
    ),
)


def where(path: Path) -> str:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    shares: Counter[str] = Counter()
    for frames, count in stacks:
        stack = ";".join(frames)
        name = next((n for n, marks in WHERE if any(m in stack for m in marks)), "other")
        shares[name] += count
    lines = [f"{path}: {total} samples, by where in the controller"]
    for name in [n for n, _ in WHERE] + ["other"]:
        lines.append(f"  {100 * shares[name] / total:5.1f}%  {name}")
    return "\n".join(lines)


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "operator/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file}:{match['line'] or '?'})"


def summarise(path: Path, top: int = 25) -> str:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    # Attribute each sample to the innermost frame that is not the stdlib's plumbing,
    # so "kopf" means time in kopf's code and the library calls it makes directly.
    for frames, count in stacks:
        self_time[short(frames[-1])] += count
        for frame in set(frames):
            inclusive[short(frame)] += count
        owner = "other"
        for frame in reversed(frames):
            match = FRAME.match(frame)
            name = package_of(match["file"]) if match else "other"
            if name not in ("asyncio", "threads", "logging", "json", "ssl") or owner == "other":
                owner = name
                if not name.startswith("other") and name not in ("asyncio", "threads"):
                    break
        packages[owner] += count
    lines = [f"{path}: {total} samples"]
    lines.append("\nby package (innermost frame of a known package):")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in packages.most_common(15)]
    lines.append(f"\ntop {top} by self samples:")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in self_time.most_common(top)]
    lines.append(f"\ntop {top} by inclusive samples:")
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--where", action="store_true", help="shares by part of a pass")
    args = parser.parse_args()
    for path in args.profiles:
        print(where(path) if args.where else summarise(path, args.top))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
