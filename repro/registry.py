"""One Registry class; each kind of named thing (datasets, models, losses, checks) has one instance.

YAML names are registry keys: a spec says `model: {name: mlp, ...}` and the model registry maps
"mlp" to its builder. An unknown name is an error that lists the known ones. An entry may have
aliases (older names kept so existing specs still load): `get` resolves them to the same builder,
while a spec keeps the name it was written with, so run keys do not change.
"""
from __future__ import annotations

import importlib
import signal
import sys
import threading
from typing import Annotated, Callable

from pydantic import AfterValidator, Field


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
        load_builtins()
        if name not in self:
            raise KeyError(self.unknown(name))
        return self._entries[self._aliases.get(name, name)]

    def unknown(self, name: str) -> str:
        """The error for a name nobody registered: the known names, and how to add one of your own."""
        shown = name if len(name) <= 40 else name[:37] + "..."
        from .plugins import from_plugin  # another claim's plugin names are not this spec's to use: not listed
        own = [n for n in self.names() if not from_plugin(self._entries[n])]
        known = ", ".join(own) + (f" (aliases: {', '.join(sorted(self._aliases))})" if self._aliases else "")
        text = f"unknown {self.kind} '{shown}'; known: {known}"
        if self.kind in ADDABLE:  # short: the whole error stays one line
            text += (f"; to add one, register it with @{ADDABLE[self.kind]}.register in a .py file the spec names "
                     "under `plugins:` (docs/writing-claims.md)")
        return text

    def names(self) -> list[str]:
        """Registered names, without aliases."""
        load_builtins()
        return sorted(self._entries)

    def aliases_of(self, name: str) -> list[str]:
        load_builtins()
        return sorted(a for a, n in self._aliases.items() if n == name)

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._entries or name in self._aliases


# The modules that register the built-in datasets, models, losses and checks. They are imported on the first
# lookup of any registry (or by `repro`'s commands, after their arguments are parsed), not by `import repro`:
# `repro --help` never waits for torch, and every reader (spec validation, training, the reference) still finds
# them, before any plugin's entries.
BUILTINS = ("repro.data", "repro.losses", "repro.models", "repro.stats")
_loaded: list[bool] = []


def load_builtins() -> None:
    """Import the BUILTINS once. Ctrl-C while torch, numpy and scipy import (seconds): an interrupt inside a
    library's import can leave it half-initialised and fail later with an unrelated traceback, so it is held
    until the imports are done and then ends the process with one line."""
    if _loaded:
        return
    _loaded.append(True)  # first: the modules' own @register calls look the registry up
    held: list[int] = []
    hold = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if hold:
        signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        for module in BUILTINS:
            importlib.import_module(module)
    except BaseException:
        _loaded.clear()  # a failed import (no torch) is tried again, and reported again, at the next lookup
        raise
    finally:
        if hold:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130)


# The kinds a user's plugin module may add to (repro/plugins.py), with the name of each kind's registry.
ADDABLE = {"dataset": "DATASETS", "model": "MODELS", "loss": "LOSSES"}

DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")
CHECKS = Registry("check")



def builders_of(arm) -> dict[str, object]:
    """The registered functions an arm's run calls, by role: its dataset's, model's and loss's, and its checkpoint
    teacher's model's (what a run key hashes plugin code of, and what preflight puts a dummy batch through)."""
    used = {"dataset": DATASETS.get(arm.data.name), "model": MODELS.get(arm.model.name),
            "loss": LOSSES.get(arm.loss.name)}
    if getattr(arm, "teacher_checkpoint", None) is not None:
        used["checkpoint model"] = MODELS.get(arm.teacher_checkpoint.model.name)
    return used


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
