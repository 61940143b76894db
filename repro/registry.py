"""One Registry class; each kind of named thing (datasets, models, losses, checks) has one instance.

YAML names are registry keys: a spec says `model: {name: mlp, ...}` and the model registry maps
"mlp" to its builder. An unknown name is an error that lists the known ones.
"""
from __future__ import annotations

from typing import Annotated, Callable

from pydantic import AfterValidator, Field


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[Callable], Callable]:
        def add(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = fn
            return fn

        return add

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")
CHECKS = Registry("check")



# Sizes a spec may ask for before `repro validate` calls it a mistake (a width of 200000 is a typo,
# not an experiment). A claim that means it raises one with a top-level `limits: {width: 200000}`.
LIMITS = {"epochs": 10_000, "batch_size": 65_536, "width": 16_384, "resolution": 1_024, "examples": 1_000_000}


def limited(name: str) -> AfterValidator:
    """A size check for an Annotated type; the claim's raised limits come in the validation context."""
    def check(value, info):
        limit = {**LIMITS, **((info.context or {}).get("limits") or {})}[name]
        if value > limit:
            raise ValueError(f"{value} is over the {name} limit of {limit}; "
                             f"a claim that means it raises it with `limits: {{{name}: {value}}}`")
        return value
    return AfterValidator(check)


# Parameter types for builders' signatures: spec._check_component validates a spec's params against
# them (strictly: "20" is not a number) before anything trains.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]   # a weight in [0, 1]
DropRate = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]   # a probability below 1
Count = Annotated[int, Field(ge=1)]
Width = Annotated[int, Field(ge=1), limited("width")]
Examples = Annotated[int, Field(ge=1), limited("examples")]
Pixels = Annotated[int, Field(ge=1), limited("resolution")]
