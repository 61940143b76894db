"""The claim's typed models (Check, Variant, Profile, Claim, ...): what a claim may say, validated by pydantic.

A claim's `arms` are partial training configs on top of `defaults`. Variants (as_written,
corrected, ...) and profiles (smoke, quick, paper) override them with `all:` (every arm) and
`arms:` (one arm). `Claim.resolve(arm, variant, profile)` merges, in that order,
defaults <- arm <- variant <- profile, and validates the result into an `Arm`. Every combination
is resolved once at load time, so a bad override fails `repro validate`, not a run hours later.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, PrivateAttr, StrictInt, StringConstraints, field_validator, model_validator

from ..registry import CHECKS, LIMITS
from .errors import _not_blank, clip
from .arm import Arm, Component, Name, Strict


class Reported(Strict):
    """A number someone else published for the quantity a check tests (another write-up, a later version of the
    source, one run of it): shown beside the measured one and the claim's own, never tested."""

    value: float
    by: str = Field(min_length=1, description="who reported it and how: e.g. \"source 004's final version, one run\"")

    @field_validator("value", mode="before")
    @classmethod
    def _finite(cls, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"expected a finite number, found {clip(repr(v), 40)}")
        return v

    @field_validator("by")
    @classmethod
    def _not_blank(cls, v):
        if not v.strip():
            raise ValueError("blank: say who reported the number and how (e.g. one run, 1000 epochs)")
        return v.strip()


class Check(Strict):
    """A statistical question about the runs (repro/stats/checks.py has each kind's test). Every kind declares
    the keys it needs, fixed here before running: equivalent -> margin; matches -> value, tolerance;
    best_of -> better; at_least -> bound (and `derived` unless it is one arm's mean). Keys a kind does
    not use are refused, so a spec cannot believe a tolerance applies where it does not."""

    kind: str
    metric: str
    arms: list[str] = Field(min_length=1)
    alpha: float = Field(gt=0, lt=0.5, description="the test's level; the report shows (1 - 2 alpha) intervals")
    margin: Optional[float] = Field(None, gt=0, validate_default=True)
    value: Optional[float | list[float]] = Field(None, validate_default=True)
    tolerance: Optional[float] = Field(None, gt=0, validate_default=True)
    better: Optional[Literal["lower", "higher"]] = Field(None, validate_default=True)
    top: Optional[int] = Field(None, ge=1, validate_default=True)
    derived: Optional[str] = Field(None, validate_default=True)
    bound: Optional[float] = Field(None, validate_default=True)
    paired: Optional[bool] = Field(None, validate_default=True)
    justification: str = Field(min_length=1, description="one line: why this alpha/margin/tolerance/bound")
    also_reported: list[Reported] = Field(default_factory=list, description="other published numbers for the "
                                          "same quantity, shown beside the measured one (not tested)")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v):
        if v not in CHECKS:
            raise ValueError(f"unknown check '{v}'; known: {', '.join(CHECKS.names())}")
        return v

    @field_validator("margin", "value", "tolerance", "bound", mode="before")
    @classmethod
    def _finite(cls, v):
        """A test against inf or NaN (or a YAML `true` read as 1.0) decides nothing honestly: refuse it."""
        for x in v if isinstance(v, list) else [v]:
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)):
                raise ValueError("expected a finite number" + (f" per arm, found {x!r}" if isinstance(v, list) else ""))
        return v

    @field_validator("margin", "value", "tolerance", "better", "top", "derived", "bound", "paired")
    @classmethod
    def _kind_takes(cls, v, info):
        from ..stats.checks import DERIVED, KEY_HELP
        kind = info.data.get("kind")
        if kind is None:  # the kind itself was refused; that is the error to report
            return v
        fn = CHECKS.get(kind)
        required, optional = getattr(fn, "needs", ()), getattr(fn, "optional", ())
        if v is None and info.field_name in required:
            raise ValueError(f"check '{kind}' needs '{info.field_name}': {KEY_HELP[info.field_name]}")
        if v is not None and info.field_name not in required + optional:
            raise ValueError(f"'{info.field_name}' does not apply to check '{kind}' (it takes "
                             f"{', '.join(required + optional) or 'none of margin/value/tolerance/...'})")
        if info.field_name == "derived" and v is not None and v not in DERIVED:
            raise ValueError(f"unknown derived quantity '{v}'; known: {', '.join(DERIVED)}")
        return v

    @field_validator("justification")
    @classmethod
    def _not_blank(cls, v):
        if not v.strip():
            raise ValueError("justification is blank: say in one line why this alpha and margin/tolerance/bound")
        return v.strip()

    @property
    def against_source_number(self) -> bool:
        """Does this check hold a measured number against the source's own number (`matches`: its `value`),
        rather than compare arms run here with each other or with a bound the spec chose for the claim?"""
        return self.kind == "matches"

    @model_validator(mode="after")
    def _arm_count(self):
        from ..stats.checks import DERIVED
        low, high = getattr(CHECKS.get(self.kind), "arm_count", (1, None))
        roles = ""
        if self.kind in ("at_least", "at_most"):  # the derived quantity fixes the arms (default 'mean': one arm)
            derived = DERIVED[self.derived or "mean"]
            low = high = len(derived.roles)
            roles = f" for '{self.derived or 'mean'}' ({', '.join(derived.roles)})"
        if len(self.arms) < low or (high is not None and len(self.arms) > high):
            want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            raise ValueError(f"arms: check '{self.kind}' compares {want} arms{roles}, got {len(self.arms)}")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms: an arm is named twice in {self.arms}")
        if isinstance(self.value, list) and len(self.value) != len(self.arms):
            raise ValueError(f"value: one number per arm ({len(self.arms)}), got {len(self.value)}")
        if self.kind == "at_most" and any(DERIVED[self.derived or "mean"].denominator):
            raise ValueError(f"derived: at_most takes 'mean' or 'difference' (a quantity whose denominator is "
                             f"constant, so negating the values negates it), got '{self.derived}'")
        if self.top is not None and self.top >= len(self.arms):
            raise ValueError(f"top: must leave at least one other arm (top {self.top}, {len(self.arms)} arms)")
        return self


class Comparable(Strict):
    """Whether a profile's absolute numbers can be set beside the source's (a reduced-scale profile's error
    count cannot reach a number the source got with 50x the epochs), with the one-line reason."""

    numbers: bool = Field(description="true: the numbers can be set beside the source's; false: they cannot")
    why: str = Field(min_length=1, description="one line: why (or the protocol that makes them comparable)")

    _why_not_blank = field_validator("why")(lambda v: _not_blank(v, "one line: why the numbers are (or are not) comparable"))


class Overrides(Strict):
    all: dict[str, Any] = {}
    arms: dict[str, dict[str, Any]] = {}


class Variant(Overrides):
    description: str = ""
    comparable: Optional[Comparable] = None  # e.g. from_scratch: no ImageNet weights, at any profile


Seed = Annotated[StrictInt, Field(ge=0, lt=2 ** 31)]  # no bools, no floats: what torch.manual_seed takes


class Sequential(Strict):
    """Judge the claims group-sequentially (repro/stats/sequential.py): a look after the profile's seeds, then after
    every `group` more (`repro run --until-decided` trains them) up to `max_seeds`, alpha spent across the
    looks. Declared in the spec, before any result: the first look is already tested at its own boundary."""

    max_seeds: int = Field(ge=2, le=1000, description="the cap on seeds per arm")
    group: int = Field(1, ge=1, description="seeds added per look")
    spending: Literal["obf", "pocock"] = Field("obf", description="alpha-spending function across the looks")


class Profile(Overrides):
    seeds: list[Seed] = Field(min_length=1)
    scale: str = Field(min_length=1, description="one line for the report, e.g. 'reduced: 20 of 1000 epochs'")
    deviations: list[str] = []  # how this profile departs from the source's protocol
    sequential: Optional[Sequential] = None
    comparable: Optional[Comparable] = None  # unstated: comparable

    _scale_not_blank = field_validator("scale")(lambda v: _not_blank(v, "one line for the report, e.g. "
                                                                        "'reduced: 20 of 1000 epochs'"))

    @model_validator(mode="after")
    def _cap_above_seeds(self):
        if self.sequential and self.sequential.max_seeds < len(self.seeds):
            raise ValueError(f"sequential.max_seeds ({self.sequential.max_seeds}) is below the profile's "
                             f"{len(self.seeds)} seeds")
        if self.sequential and max(self.seeds) + self.sequential.max_seeds - len(self.seeds) >= 2 ** 31:
            # the looks add the next integers after the largest seed: they must be seeds a spec could list
            raise ValueError(f"sequential: the looks would add seeds up to {max(self.seeds) + self.sequential.max_seeds - len(self.seeds)}, "
                             f"beyond the largest seed {2 ** 31 - 1}; use smaller seeds")
        return self

    def seeds_for(self, n: int) -> list[int]:
        """The first n seeds in the spec's order: its own, then the next unused integers (so added seeds
        are the same for every claim of the profile, and their runs are shared)."""
        seeds, nxt = list(self.seeds[:n]), max(self.seeds) + 1
        while len(seeds) < n:
            if nxt not in self.seeds:
                seeds.append(nxt)
            nxt += 1
        return seeds

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v):
        # a repeated seed trains one run and counts it twice: pseudo-replication, not evidence
        repeated = sorted({s for s in v if v.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds must be distinct; repeated: {repeated}")
        return v


class Source(Strict):
    file: str
    quote: str


class Claim(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    source: Source
    statement: str
    defaults: dict[str, Any] = {}
    arms: dict[Name, dict[str, Any]] = Field(min_length=1)
    check: Check
    # further pre-declared checks on the same runs (e.g. non-inferiority beside superiority): each is judged,
    # registered and corrected in the family like the primary `check`; the claim's headline stays the primary's
    secondary_checks: list[Check] = []
    preconditions: list[Check] = []
    variants: dict[Name, Variant] = Field({"default": Variant()}, min_length=1)
    # Profile names are the user's: smoke (synthetic data, machinery only), quick and paper keep their
    # meaning in this project's claims; 'auto' is not a profile but `repro run`'s choice of quick/paper.
    # A claim whose arms are all observed (repro/spec/observed.py) trains nothing and needs no profile.
    profiles: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], Profile] = {}
    # Python modules with the claim's own models, datasets and losses (repro/plugins.py), imported by
    # load_claim before the arms are checked; nothing else is imported.
    plugins: list[str] = []
    _plugin_modules: tuple[str, ...] = PrivateAttr(())  # what load_claim imported for them (the arms may use)
    _observed: dict = PrivateAttr(default_factory=dict)  # (arm, variant) -> (Observed, values), from load_claim
    _path: Optional[Path] = PrivateAttr(None)  # the spec file it was loaded from (load_claim)

    @property
    def spec_path(self) -> Optional[Path]:
        """The spec file this claim was loaded from (None: built in memory), for a process that must load it again."""
        return self._path

    @property
    def observed(self) -> dict:
        """(arm, variant) -> (Observed, values) of the observed arms (repro/spec/observed.py)."""
        return self._observed

    def is_observed(self, arm: str) -> bool:
        return is_observed(self.arms[arm])

    @model_validator(mode="after")
    def _a_profile_unless_all_observed(self):
        if not self.profiles and not all(self.is_observed(a) for a in self.arms):
            raise ValueError("profiles: at least one profile is needed to train the arms (only a claim whose "
                             "arms are all `observed:` needs none)")
        return self
    # Raised size limits (registry.LIMITS), for a claim that really means a size over the default.
    limits: dict[Literal[tuple(LIMITS)], Annotated[int, Field(gt=0)]] = {}

    @model_validator(mode="after")
    def _keep_plugin_modules(self, info):
        self._plugin_modules = tuple((info.context or {}).get("plugins", ()))
        return self

    @field_validator("profiles")
    @classmethod
    def _auto_is_not_a_profile(cls, v):
        if "auto" in v:
            raise ValueError("'auto' is not a profile name: `repro run --profile auto` means paper on a GPU, "
                             "quick on a CPU; name this profile something else")
        return v

    @model_validator(mode="after")
    def _arms_exist(self):
        named = [("check.arms", a) for a in self.check.arms]
        named += [(f"secondary_checks.{i}.arms", a) for i, c in enumerate(self.secondary_checks) for a in c.arms]
        named += [(f"preconditions.{i}.arms", a) for i, c in enumerate(self.preconditions) for a in c.arms]
        named += [(f"variants.{v}.arms", a) for v, o in self.variants.items() for a in o.arms]
        named += [(f"profiles.{p}.arms", a) for p, o in self.profiles.items() for a in o.arms]
        for where, arm in named:
            if arm not in self.arms:
                raise ValueError(f"{where}: unknown arm '{arm}'; arms are {sorted(self.arms)}")
        compared = {a for c in [self.check, *self.preconditions] for a in c.arms}
        for i, c in enumerate(self.secondary_checks):  # on the runs the claim trains anyway: no new run, no new key
            if set(c.arms) - compared:
                raise ValueError(f"secondary_checks.{i}.arms: {sorted(set(c.arms) - compared)} not compared by the "
                                 f"check or a precondition; a secondary check reads the runs those already train")
        return self

    def resolve(self, arm: str, variant: str, profile: str) -> Arm:
        if self.is_observed(arm):
            raise ValueError(f"arm '{arm}' is observed (values measured elsewhere): it has no training config")
        v, p = self.variants[variant], self.profiles[profile]
        merged: dict = {}
        for layer in (self.defaults, self.arms[arm], v.all, v.arms.get(arm, {}), p.all, p.arms.get(arm, {})):
            merged = deep_merge(_named_components(merged, layer), layer)
        return Arm.model_validate(merged, context={"limits": self.limits, "plugins": self._plugin_modules})

    def numbers_comparable(self, variant: str, profile: str) -> tuple[bool, str]:
        """Can this variant at this profile be held against the source's own numbers? (and why not). A check
        against the source's number (Check.against_source_number) where they cannot is never NOT REPRODUCED."""
        profile_stated = self.profiles[profile].comparable if profile in self.profiles else None  # observed-only
        for stated in (self.variants[variant].comparable, profile_stated):
            if stated is not None and not stated.numbers:
                return False, stated.why
        return True, ""

    def teacher_order(self) -> list[str]:
        """Arm names with every teacher before its students."""
        order: list[str] = []

        def visit(name, chain):
            if name in chain:
                raise ValueError(f"arms: teacher cycle {' -> '.join(chain + [name])}")
            merged = {} if self.is_observed(name) else {**self.defaults, **self.arms[name]}
            links = [("init_from", merged.get("init_from"))]
            named = merged.get("teacher")
            links += [("teacher", n) for n in (named if isinstance(named, (list, dict)) else [named])]
            for link, other in links:
                if not isinstance(other, (str, type(None))):
                    raise ValueError(f"arms.{name}.{link}: expected an arm name, found {clip(repr(other), 40)}")
                if other is not None:
                    if other not in self.arms:
                        raise ValueError(f"arms.{name}.{link}: unknown arm '{other}'")
                    if self.is_observed(other):
                        raise ValueError(f"arms.{name}.{link}: arm '{other}' is observed (values measured "
                                         "elsewhere): it has no model to learn from")
                    visit(other, chain + [name])
            if name not in order:
                order.append(name)

        for name in self.arms:
            visit(name, [])
        return order


def _named_components(merged: dict, layer: dict) -> dict:
    """`merged` with the name of each component that `layer` gives parameters for without a name: an override
    such as `all: {loss: {label_smoothing: 0.1}}` tunes the component in place, whether the arm named it as a
    string (`loss: hinton`) or left the default (ce), rather than replacing it with a nameless one."""
    out = merged
    for key, value in layer.items():
        field = Arm.model_fields.get(key)
        if field is None or field.annotation not in (Component, "Component") or not isinstance(value, dict) \
                or "name" in value or isinstance(merged.get(key), dict):
            continue
        base = merged.get(key, field.default if isinstance(field.default, Component) else None)
        if isinstance(base, Component):
            base = {"name": base.name, **base.params}
        elif isinstance(base, str):
            base = {"name": base}
        if base is not None:
            out = {**out, key: base}
    return out


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "name" not in value:
            out[key] = deep_merge(out[key], value)
        else:  # a component with a new name replaces the old one whole
            out[key] = copy.deepcopy(value)
    return out


def is_observed(raw_arm) -> bool:
    """An arm declared with `observed:` (values measured elsewhere, repro/spec/observed.py), not trained."""
    return isinstance(raw_arm, dict) and "observed" in raw_arm
