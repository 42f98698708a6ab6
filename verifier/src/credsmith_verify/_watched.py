"""A mounted file, re-read when it changes, that keeps serving its last good contents."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("credsmith_verify")

# (inode, mtime in ns, size) of the file that a stat() found, following symlinks.
_Signature = tuple[int, int, int]


class WatchedFile(Generic[T]):
    """The parsed contents of `path`, re-read whenever its stat signature changes.

    kubelet updates a mounted Secret or ConfigMap by writing a new directory and swapping the
    ``..data`` symlink, so the file is replaced, never edited in place; other writers may
    leave it missing or half-written for a moment. When the file is missing, unreadable or
    does not parse, the last good contents stay in use and a warning says so, once per bad
    version of the file (not on every call). Before any good version has been read, `empty`
    is served: a verifier built on it rejects everyone rather than raising.
    """

    def __init__(
        self, path: Path, parse: Callable[[str], T], empty: T, what: str = "document"
    ) -> None:
        self.path = path
        self._parse = parse
        self._what = what
        self._lock = threading.Lock()
        self._value = empty
        self._good: _Signature | None = None
        self._seen: _Signature | tuple[str, str] | None = None
        self.error: str | None = None
        """Why the newest version of the file is not in use, or None when it is."""

    @property
    def value(self) -> T:
        return self._value

    @property
    def loaded(self) -> bool:
        """Whether a good version of the file has been read (for a readiness probe)."""
        return self._good is not None

    def refresh(self) -> bool:
        """Re-read the file if it changed since the last look; True if a new version is now
        in use."""
        try:
            info = os.stat(self.path)
        except OSError as error:
            self._failed(("stat", type(error).__name__), f"cannot read: {_reason(error)}")
            return False
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        if signature == self._good:
            if self._seen is not None:  # the good version is back after a failure
                self._seen, self.error = None, None
            return False
        if signature == self._seen:
            return False
        with self._lock:
            if signature in (self._good, self._seen):
                return False
            try:
                value = self._parse(self.path.read_text(encoding="utf-8"))
            except OSError as error:
                self._failed(signature, f"cannot read: {_reason(error)}")
                return False
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                # The parsers' messages name fields, never values; still, say only the kind.
                self._failed(signature, f"does not parse ({type(error).__name__})")
                return False
            first = self._good is None
            self._value, self._good, self._seen, self.error = value, signature, None, None
        logger.info("%s %s: %s", "loaded" if first else "reloaded", self._what, self.path)
        return True

    def _failed(self, seen: _Signature | tuple[str, str], reason: str) -> None:
        if seen == self._seen:
            return  # said already
        self._seen, self.error = seen, reason
        if self._good is None:
            logger.warning(
                "%s %s %s; serving an empty one until it can be read (every check fails)",
                self._what,
                self.path,
                reason,
            )
        else:
            logger.warning(
                "%s %s %s; still serving the last good version", self._what, self.path, reason
            )


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


class MountedDocument(Generic[T]):
    """A verifier's document (a registry, a JWK Set) read from a mounted file: the common
    surface of `ClientRegistry` and `JwkSet`."""

    def __init__(
        self, path: str | os.PathLike[str], parse: Callable[[str], T], empty: T, what: str
    ) -> None:
        self.path = Path(path)
        self._file: WatchedFile[T] = WatchedFile(self.path, parse, empty, what=what)
        self._file.refresh()

    @property
    def loaded(self) -> bool:
        """Whether a good document has been read (False: every check fails)."""
        return self._file.loaded

    @property
    def error(self) -> str | None:
        """Why the file's newest version is not in use (missing, unparsable), or None."""
        return self._file.error

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since the last read; True if a new document is
        now in use."""
        return self._file.refresh()
