"""`replace` for the plain frozen dataclasses of a pass (Pass, SecretState, Credential). Pure.

A pass copies its `Pass` (25 fields) at every stage and the state and credential several
times: ~18 copies a pass. `dataclasses.replace` walks the fields and calls the frozen
`__init__` (one `object.__setattr__` per field): ~25 us a copy of a Pass, about a tenth of a
pass's CPU in a bulk issue (bench/README.md, "Operator CPU per credential"). For a class whose
`__init__` only assigns its fields (no `__post_init__`, no InitVar, no init=False field, no
cached attribute), copying the instance's `__dict__` makes the same object in ~3 us. Any other
class goes through `dataclasses.replace` unchanged.

mypy checks calls against the fields exactly as for `dataclasses.replace` (its dataclass
plugin), since to the type checker this *is* `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

__all__ = ["replace"]


_PLAIN: dict[type, frozenset[str] | None] = {}


def _plain_fields(cls: type) -> frozenset[str] | None:
    """The field names of a dataclass whose instances are exactly their fields' values, or
    None when copying the instance dict would not be what its `__init__` makes."""
    if cls not in _PLAIN:
        _PLAIN[cls] = _examine(cls)
    return _PLAIN[cls]


def _examine(cls: type) -> frozenset[str] | None:
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    if hasattr(cls, "__slots__") or any(
        isinstance(value, functools.cached_property) for value in vars(cls).values()
    ):
        return None
    declared = cls.__dataclass_fields__  # InitVars are here, not in fields()
    fields = dataclasses.fields(cls)
    if len(declared) != len(fields) or not all(f.init for f in fields):
        return None
    return frozenset(f.name for f in fields)


def _replace(obj: Any, /, **changes: Any) -> Any:
    names = _plain_fields(type(obj))
    if names is None:
        return dataclasses.replace(obj, **changes)
    if not names.issuperset(changes):
        unknown = ", ".join(sorted(set(changes) - names))
        raise TypeError(f"{type(obj).__name__} has no field(s) {unknown}")
    copy = object.__new__(type(obj))
    state = copy.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    return copy


if TYPE_CHECKING:
    from dataclasses import replace
else:
    replace = _replace
