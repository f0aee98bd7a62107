"""Value constraints declared on the config fields themselves, checked generically when a config loads.

A field declares its rule once, beside its default (`batch_size: int = at_least(1, 16)`); the loader
checks every declared rule with the dotted key in the message, and tests are generated from the same
declarations. Checks that relate two keys stay in `Config.validate`. A subclass that only changes a
default (`SFTConfig.epochs`) keeps the rule of the field it overrides.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

_KEY = "constraint"  # the dataclass field metadata entry


class Names(Protocol):
    """A registry of names (empathy_ray.algo.registry.Registry)."""

    def __contains__(self, name: object) -> bool: ...
    def names(self) -> tuple[str, ...]: ...
    def unknown(self, name: object) -> str: ...


@dataclass(frozen=True)
class Range:
    """Numeric bounds; None values (an optional key left unset) always pass."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None
        fails = (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )
        return f"must be {self.describe()}" if fails else None

    def describe(self) -> str:
        """In words: "at least 1", "positive", "in [0, 1)", "in (0, 1]", ..."""
        if self.gt == 0 and self.le is None and self.lt is None:
            return "positive"
        low = f"[{self.ge:g}" if self.ge is not None else f"({self.gt:g}" if self.gt is not None else ""
        high = f"{self.le:g}]" if self.le is not None else f"{self.lt:g})" if self.lt is not None else ""
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"at least {self.ge:g}" if self.ge is not None else f"above {self.gt:g}"
        return f"at most {self.le:g}" if self.le is not None else f"below {self.lt:g}"


@dataclass(frozen=True)
class OneOf:
    """A name registered in `names` (read when the config loads, so run-time registrations count)."""

    names: Names

    def problem(self, value: Any) -> str | None:
        return None if value in self.names else self.names.unknown(value)


Constraint = Range | OneOf


def _field(default: Any, constraint: Constraint) -> Any:
    return dataclasses.field(default=default, metadata={_KEY: constraint})


def at_least(lo: float, default: Any) -> Any:
    return _field(default, Range(ge=lo))


def positive(default: Any) -> Any:
    return _field(default, Range(gt=0))


def between(lo: float, hi: float, default: Any) -> Any:
    """`lo <= value <= hi`."""
    return _field(default, Range(ge=lo, le=hi))


def share(default: float) -> Any:
    """A share in [0, 1)."""
    return _field(default, Range(ge=0, lt=1))


def probability(default: float) -> Any:
    """In (0, 1], e.g. top-p."""
    return _field(default, Range(gt=0, le=1))


def registered(names: Names, default: str) -> Any:
    """One of the names in a registry (e.g. empathy_ray.algo.ESTIMATORS)."""
    return _field(default, OneOf(names))


def _constraint(cls: type, name: str) -> Constraint | None:
    """The rule declared for field `name` on `cls` or, if `cls` only overrides its default, on a base."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and _KEY in f.metadata:
            return f.metadata[_KEY]
    return None


def declared(cls: type, prefix: str = "") -> Iterator[tuple[str, Constraint]]:
    """Every constrained key under the config class `cls`, as (dotted key, constraint)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        rule = _constraint(cls, f.name)
        if rule is not None:
            yield key, rule
        if dataclasses.is_dataclass(hints[f.name]):
            yield from declared(hints[f.name], key)


def violations(obj: Any, prefix: str = "") -> Iterator[str]:
    """`key=value: why` for each value of the config section `obj` (recursively) that breaks its rule."""
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        rule = _constraint(type(obj), f.name)
        problem = rule.problem(value) if rule is not None else None
        if problem:
            yield f"{key}={value!r}: {problem}"
        if dataclasses.is_dataclass(value):
            yield from violations(value, key)
