"""One Registry class; each kind of named thing (datasets, models, losses, checks) has one instance.

YAML names are registry keys: a spec says `model: {name: mlp, ...}` and the model registry maps
"mlp" to its builder. An unknown name is an error that lists the known ones. An entry may have
aliases (older names kept so existing specs still load): `get` resolves them to the same builder,
while a spec keeps the name it was written with, so run keys do not change.
"""
from __future__ import annotations

from typing import Callable


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable] = {}
        self._aliases: dict[str, str] = {}  # alias -> registered name

    def register(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
        def add(fn: Callable) -> Callable:
            for n in (name, *aliases):
                if n in self:
                    raise ValueError(f"{self.kind} '{n}' is already registered")
            self._entries[name] = fn
            self._aliases.update({alias: name for alias in aliases})
            return fn

        return add

    def get(self, name: str) -> Callable:
        if name not in self:
            known = ", ".join(self.names()) + (f" (aliases: {', '.join(sorted(self._aliases))})" if self._aliases else "")
            raise KeyError(f"unknown {self.kind} '{name}'; known: {known}")
        return self._entries[self._aliases.get(name, name)]

    def names(self) -> list[str]:
        """Registered names, without aliases."""
        return sorted(self._entries)

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, n in self._aliases.items() if n == name)

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._aliases


DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")
CHECKS = Registry("check")
