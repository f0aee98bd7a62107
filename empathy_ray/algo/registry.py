"""Named algorithm parts (advantage estimators, KL kinds, loss aggregations) that a config picks by name.

A registry is the one list of valid names: the config loader checks `rl.algo.*` against it, and the
code dispatches through it, so adding a part is one decorated function in its module, nothing else.
"""

from __future__ import annotations

from typing import Generic, TypeVar

E = TypeVar("E")


class Registry(Generic[E]):
    """Entries of one kind by name, in registration order."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind = kind  # e.g. "advantage estimator": used in error messages
        self.where = where  # how to add one, for error messages
        self._entries: dict[str, E] = {}

    def add(self, name: str, entry: E) -> None:
        """Register `entry` as `name`; a name is taken once, so two parts never silently shadow each other."""
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Drop a run-time registration (tests register parts of their own and clean up after)."""
        if name not in self._entries:
            raise ValueError(self.unknown(name))
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def unknown(self, name: object) -> str:
        """Why `name` is not valid, listing the registered names and how to add one."""
        return f"unknown {self.kind} {name!r}; registered: {', '.join(self._entries)} ({self.where})"

    def __getitem__(self, name: str) -> E:
        if name not in self._entries:
            raise ValueError(self.unknown(name))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
