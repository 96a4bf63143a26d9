"""A small named registry: models, export targets and runtime backends are one entry each.

Modelled on timm's model registry and optimum's exporter tasks: code registers an entry under a
name, and every consumer (CLI choices, dispatch, docs, benchmarks) reads the same table.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgemri.errors import UsageError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """' Did you mean "x"?' for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


class Registry(Generic[T]):
    """Name -> entry, with a helpful error for unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form: ``@MODELS.register("mobilenetv2")``."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            choices = self.names()
            raise UsageError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, choices)}",
                f"Choose one of: {', '.join(choices)}",
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
