"""reconcile/frozen.replace: the same object as dataclasses.replace, made faster."""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Any

import pytest

from credsmith.reconcile.frozen import replace


@dataclasses.dataclass(frozen=True)
class Plain:
    a: int
    b: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Checked:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


@dataclasses.dataclass(frozen=True)
class Cached:
    a: int

    @cached_property
    def double(self) -> int:
        return 2 * self.a


def test_a_copy_with_the_changes_equal_to_what_dataclasses_makes() -> None:
    plain = Plain(1, ("x",))
    copy = replace(plain, a=2)
    assert copy == dataclasses.replace(plain, a=2) == Plain(2, ("x",))
    assert type(copy) is Plain
    assert copy is not plain
    assert plain == Plain(1, ("x",))
    assert hash(copy) == hash(Plain(2, ("x",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.a = 3  # type: ignore[misc]


def test_an_unknown_field_is_refused() -> None:
    changes: dict[str, Any] = {"c": 1}
    with pytest.raises(TypeError, match="no field"):
        replace(Plain(1), **changes)


def test_a_class_with_post_init_or_cached_attributes_goes_through_its_init() -> None:
    with pytest.raises(ValueError, match="negative"):
        replace(Checked(1), a=-1)
    cached = Cached(1)
    assert cached.double == 2
    assert replace(cached, a=5).double == 10
