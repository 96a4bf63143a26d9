"""A small named registry: models, export targets, file formats and runtime backends are one entry each.

Modelled on timm's model registry and optimum's exporter tasks. One idiom everywhere: an entry is
an object with a ``name`` attribute (a frozen dataclass, or a class with a ``name`` class
attribute), and the module that defines it calls ``REGISTRY.add(entry)`` at import time. Every
consumer (CLI choices and help, dispatch, docs tables, parametrized tests) reads the same table.
Registries load entries lazily when they are given ``modules``: importing the registry imports
nothing heavy, and the entry modules themselves import their frameworks only inside functions.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from edgemri.errors import UsageError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """' Did you mean "x"?' for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


def unknown_choice(kind: str, name: str, choices: Sequence[str]) -> UsageError:
    """The one error for an unknown name: the closest match, then every valid choice."""
    return UsageError(f"unknown {kind} {name!r}.{did_you_mean(name, choices)}",
                      f"Choose one of: {', '.join(choices)}")


class Registry(Generic[T]):
    """Name -> entry in registration order, with a helpful error for unknown names.

    ``modules`` are imported (once, on first read) to register their entries, so the package that
    owns a registry lists its entry modules in one place and nothing else keeps a list of names.
    """

    def __init__(self, kind: str, modules: Sequence[str] = ()):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._modules = tuple(modules)
        self._loaded = not modules

    def add(self, entry: T) -> T:
        """Register ``entry`` under ``entry.name``; a name may be registered once."""
        name = entry.name
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def _load(self) -> dict[str, T]:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)
        return self._entries

    def get(self, name: str) -> T:
        entries = self._load()
        if name not in entries:
            raise unknown_choice(self.kind, name, self.names())
        return entries[name]

    def names(self) -> list[str]:
        return list(self._load())

    def entries(self) -> list[T]:
        return list(self._load().values())

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._load().items())

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __len__(self) -> int:
        return len(self._load())
