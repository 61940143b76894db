"""YAML claim specs -> typed, validated objects; every error names the file, the key and what was expected.

A claim's `arms` are partial training configs on top of `defaults`. Variants (as_written,
corrected, ...) and profiles (smoke, quick, paper) override them with `all:` (every arm) and
`arms:` (one arm). `Claim.resolve(arm, variant, profile)` merges, in that order,
defaults <- arm <- variant <- profile, and validates the result into an `Arm`. Every combination
is resolved once at load time, so a bad override fails `repro validate`, not a run hours later.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator,
                      model_validator)

from .registry import CHECKS, DATASETS, LOSSES, MODELS

# Bump when a change alters what training computes for an unchanged spec: it is part of every
# run key, so results from the old code stop counting as done (and are reported as stale).
# 2: dropout masks drawn with torch.rand (models.Dropout), fused optimiser steps.
TRAIN_VERSION = 2


class SpecError(ValueError):
    """A spec is malformed. str() is one line: `file: key: what was expected`."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(Strict):
    """A registry name plus its keyword parameters, written inline in YAML: `{name: mlp, hidden: [800, 800]}`."""

    name: str
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _inline_params(cls, value):
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            return {"name": value.get("name"), "params": {k: v for k, v in value.items() if k != "name"}}
        return value


def _check_component(component: Component, registry, reserved: tuple[str, ...]) -> Component:
    """Refuse unknown names, and parameters the builder does not take."""
    if component.name not in registry:
        raise ValueError(f"unknown {registry.kind} '{component.name}'; known: {', '.join(registry.names())}")
    signature = inspect.signature(registry.get(component.name))
    accepted = [p for p in signature.parameters if p not in reserved]
    unknown = sorted(set(component.params) - set(accepted))
    if unknown:
        raise ValueError(f"{registry.kind} '{component.name}' takes no parameter {unknown}; it takes {accepted}")
    missing = [p for p, v in signature.parameters.items()
               if p not in reserved and v.default is inspect.Parameter.empty and p not in component.params]
    if missing:
        raise ValueError(f"{registry.kind} '{component.name}' needs parameter(s) {missing}")
    return component


class Optimizer(Strict):
    name: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)


class Schedule(Strict):
    """LR per epoch: constant; halve_every N epochs (hinton-repro); step (StepLR: x gamma every step_size
    epochs; gamma 0 drops the LR to 0, as the hymenoptera command line does); cosine to 0 over the run;
    plateau (ReduceLROnPlateau on the test loss, as the mnist-course code does)."""

    name: Literal["constant", "halve_every", "step", "cosine", "plateau"] = "constant"
    every: Optional[int] = Field(None, gt=0, description="halve_every: epochs between halvings")
    step_size: Optional[int] = Field(None, gt=0, description="step: epochs between decays")
    gamma: float = Field(0.1, ge=0, le=1, description="step: decay factor")
    factor: float = Field(0.1, gt=0, lt=1, description="plateau: decay factor")
    patience: int = Field(10, ge=0, description="plateau: epochs without improvement before decaying")

    @model_validator(mode="after")
    def _needs_params(self):
        needs = {"halve_every": "every", "step": "step_size"}.get(self.name)
        if needs and getattr(self, needs) is None:
            raise ValueError(f"schedule '{self.name}' needs '{needs}'")
        return self


class BiasShift(Strict):
    """Hinton sec. 3: after training without some classes, raise their output biases. The shift is
    tuned on held-out training images (data param `holdout`) and, separately, on the test set as the
    paper did; both are recorded."""

    classes: list[int] = Field(min_length=1)
    grid: list[float] = Field(default_factory=lambda: [x / 2 for x in range(0, 41)], min_length=1)


class Arm(Strict):
    """One arm, fully resolved: everything `train` needs except the teacher's own training.
    Every field's description is its entry in docs/spec-reference.md (`repro reference`)."""

    model: Component = Field(description="the network: a model name and its parameters (see Models)")
    data: Component = Field(description="the dataset: a dataset name and its parameters (see Datasets)")
    loss: Component = Field(Component(name="ce"), description="the training loss and its parameters (see Losses)")
    teacher: Optional[str] = Field(None, description="another arm of the same claim whose trained model gives "
                                   "this arm's teacher logits (same seed, or the teacher's fixed_seed)")
    teacher_epoch: Optional[int] = Field(None, gt=0, description="distil from the teacher's weights at the end of "
                                         "this epoch of its run instead of its final ones (the teacher run is "
                                         "not changed or retrained for it: it keeps those weights as it passes)")
    fixed_seed: Optional[int] = Field(None, description="one model for every seed of the profile (a teacher file "
                                      "the source ships)")
    teacher_mode: Literal["eval", "train"] = Field("eval", description="'train': the teacher's dropout stays on "
                                                   "while producing soft targets")
    init_from: Optional[str] = Field(None, description="another arm whose final weights this one starts from")
    optimizer: Optimizer = Field(description="name (sgd, adam, adamw), lr, momentum, weight_decay")
    schedule: Schedule = Field(Schedule(), description="learning rate per epoch (see Schedules)")
    epochs: int = Field(gt=0, description="training epochs")
    batch_size: int = Field(gt=0, description="training batch size")
    jitter_px: int = Field(0, ge=0, description="augmentation: random translation by up to this many pixels")
    crop_pad: int = Field(0, ge=0, description="augmentation: pad by this many pixels, then random-crop back")
    hflip: bool = Field(False, description="augmentation: random horizontal flips")
    resolution: Optional[int] = Field(None, gt=0, description="resize images to this side (train and test)")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast forward passes (loss in fp32)")
    compile: bool = Field(False, description="torch.compile the training forward (fuses kernels: last-bit "
                          "differences)")
    select: Literal["last", "best"] = Field("last", description="report the last epoch, or the epoch with the "
                                            "best test accuracy (a teacher chosen so teaches with those weights)")
    log_steps: bool = Field(False, description="record running train accuracy per step (`step_acc`; "
                            "'learns faster' claims)")
    bias_shift: Optional[BiasShift] = Field(None, description="Hinton sec. 3: raise the output biases of "
                                            "`classes` after training, tuned over `grid`; records errors_after_*")

    # Soft targets computed once for the whole transfer set instead of a teacher forward per batch:
    # only where they cannot change between epochs (no augmentation, teacher in eval mode).
    cache_teacher_logits: bool = Field(False, description="compute the teacher's soft targets once for the "
                                       "whole transfer set (needs an eval-mode teacher and no augmentation)")

    @model_validator(mode="after")
    def _cache_needs_fixed_targets(self):
        if self.cache_teacher_logits and (self.teacher is None or self.teacher_mode != "eval"
                                          or self.jitter_px or self.crop_pad or self.hflip):
            raise ValueError("cache_teacher_logits needs a teacher in eval mode and no augmentation "
                             "(jitter_px, crop_pad, hflip): otherwise the soft targets change every epoch")
        return self

    @model_validator(mode="after")
    def _teacher_for_the_loss(self):
        """A loss that reads teacher logits needs a teacher arm (else the run would crash mid-plan)."""
        needs_teacher = LOSSES.get(self.loss.name) and inspect.signature(LOSSES.get(self.loss.name)).parameters[
            "teacher_logits"].default is inspect.Parameter.empty
        if needs_teacher and self.teacher is None:
            raise ValueError(f"loss: '{self.loss.name}' distils from a teacher, but the arm has no 'teacher' "
                             "(for a label-smoothed arm without a teacher: loss: {name: ce, label_smoothing: 0.1})")
        if self.teacher_epoch is not None and self.teacher is None:
            raise ValueError("teacher_epoch: the arm has no 'teacher' to take an epoch of")
        return self

    _model = field_validator("model")(lambda v: _check_component(v, MODELS, ("in_shape", "num_classes")))
    _data = field_validator("data")(lambda v: _check_component(v, DATASETS, ()))
    _loss = field_validator("loss")(lambda v: _check_component(
        v, LOSSES, ("student_logits", "targets", "teacher_logits")))


class Check(Strict):
    """A statistical question about the runs (repro/stats.py has each kind's test). Every kind declares
    the keys it needs, fixed here before running: equivalent -> margin; matches -> value, tolerance;
    best_of -> better; at_least -> bound (and `derived` unless it is one arm's mean). Keys a kind does
    not use are refused, so a spec cannot believe a tolerance applies where it does not."""

    kind: str
    metric: str
    arms: list[str] = Field(min_length=1)
    alpha: float = Field(gt=0, lt=0.5, description="the test's level; the report shows (1 - 2 alpha) intervals")
    margin: Optional[float] = Field(None, ge=0, validate_default=True)
    value: Optional[float | list[float]] = Field(None, validate_default=True)
    tolerance: Optional[float] = Field(None, gt=0, validate_default=True)
    better: Optional[Literal["lower", "higher"]] = Field(None, validate_default=True)
    top: Optional[int] = Field(None, ge=1, validate_default=True)
    derived: Optional[str] = Field(None, validate_default=True)
    bound: Optional[float] = Field(None, validate_default=True)
    paired: Optional[bool] = Field(None, validate_default=True)
    justification: str = Field(min_length=1, description="one line: why this alpha/margin/tolerance/bound")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v):
        if v not in CHECKS:
            raise ValueError(f"unknown check '{v}'; known: {', '.join(CHECKS.names())}")
        return v

    @field_validator("margin", "value", "tolerance", "better", "top", "derived", "bound", "paired")
    @classmethod
    def _kind_takes(cls, v, info):
        from .stats import DERIVED, KEY_HELP
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

    @model_validator(mode="after")
    def _arm_count(self):
        from .stats import DERIVED
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
        if self.top is not None and self.top >= len(self.arms):
            raise ValueError(f"top: must leave at least one other arm (top {self.top}, {len(self.arms)} arms)")
        return self


class Overrides(Strict):
    all: dict[str, Any] = {}
    arms: dict[str, dict[str, Any]] = {}


class Variant(Overrides):
    description: str = ""


class Profile(Overrides):
    seeds: list[int] = Field(min_length=1)
    scale: str = Field(min_length=1, description="one line for the report, e.g. 'reduced: 20 of 1000 epochs'")
    deviations: list[str] = []  # how this profile departs from the source's protocol


class Source(Strict):
    file: str
    quote: str


class Claim(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    source: Source
    statement: str
    defaults: dict[str, Any] = {}
    arms: dict[str, dict[str, Any]] = Field(min_length=1)
    check: Check
    preconditions: list[Check] = []
    variants: dict[str, Variant] = {"default": Variant()}
    # Profile names are the user's: smoke (synthetic data, machinery only), quick and paper keep their
    # meaning in this project's claims; 'auto' is not a profile but `repro run`'s choice of quick/paper.
    profiles: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")], Profile] = Field(min_length=1)

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
        named += [(f"preconditions.{i}.arms", a) for i, c in enumerate(self.preconditions) for a in c.arms]
        named += [(f"variants.{v}.arms", a) for v, o in self.variants.items() for a in o.arms]
        named += [(f"profiles.{p}.arms", a) for p, o in self.profiles.items() for a in o.arms]
        for where, arm in named:
            if arm not in self.arms:
                raise ValueError(f"{where}: unknown arm '{arm}'; arms are {sorted(self.arms)}")
        return self

    def resolve(self, arm: str, variant: str, profile: str) -> Arm:
        v, p = self.variants[variant], self.profiles[profile]
        merged: dict = {}
        for layer in (self.defaults, self.arms[arm], v.all, v.arms.get(arm, {}), p.all, p.arms.get(arm, {})):
            merged = deep_merge(merged, layer)
        return Arm.model_validate(merged)

    def teacher_order(self) -> list[str]:
        """Arm names with every teacher before its students."""
        order: list[str] = []

        def visit(name, chain):
            if name in chain:
                raise ValueError(f"arms: teacher cycle {' -> '.join(chain + [name])}")
            merged = {**self.defaults, **self.arms[name]}
            for link in ("teacher", "init_from"):
                other = merged.get(link)
                if other is not None:
                    if other not in self.arms:
                        raise ValueError(f"arms.{name}.{link}: unknown arm '{other}'")
                    visit(other, chain + [name])
            if name not in order:
                order.append(name)

        for name in self.arms:
            visit(name, [])
        return order


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "name" not in value:
            out[key] = deep_merge(out[key], value)
        else:  # a component with a new name replaces the old one whole
            out[key] = copy.deepcopy(value)
    return out


def _format(err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) or first["type"] == "missing" else f" (got {got!r})"
    return f"{prefix}{key}: {first['msg'].removeprefix('Value error, ')}{got_text}"


def read_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise SpecError(f"{path}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: (top level): expected a mapping of claim fields, got {type(raw).__name__}")
    return raw


def load_claim(path: str | Path) -> Claim:
    """`base: _shared/x.yaml` (relative to the spec) merges the claim over a shared file, so claims of
    one source define their common arms (and hence share teacher runs) once. One level, no logic."""
    path = Path(path)
    raw = read_yaml(path)
    if "base" in raw:
        base_path = path.parent / str(raw.pop("base"))
        base = read_yaml(base_path)
        if "base" in base:
            raise SpecError(f"{base_path}: base: a shared file cannot have a base itself")
        raw = deep_merge(base, raw)
    try:
        claim = Claim.model_validate(raw)
    except ValidationError as err:
        raise SpecError(f"{path}: {_format(err)}") from None
    if claim.id != path.stem:
        raise SpecError(f"{path}: id: expected '{path.stem}' (the file name), got '{claim.id}'")
    try:
        order = claim.teacher_order()
    except ValueError as err:
        raise SpecError(f"{path}: {err}") from None
    for variant in claim.variants:
        for profile in claim.profiles:
            for arm in order:
                try:
                    claim.resolve(arm, variant, profile)
                except ValidationError as err:
                    context = f"arms.{arm} (variant '{variant}', profile '{profile}')."
                    raise SpecError(f"{path}: {_format(err, context)}") from None
    return claim


def load_claims(folder: str | Path = "claims") -> dict[str, Claim]:
    paths = sorted(Path(folder).glob("*.yaml"))
    if not paths:
        raise SpecError(f"{folder}: no claim specs (*.yaml) found")
    return {claim.id: claim for claim in map(load_claim, paths)}


class RunSpec(Strict):
    """One arm of one claim for one seed, fully resolved; its teacher is itself a RunSpec.

    Not tied to a claim: two claims needing the same teacher produce equal RunSpecs, hence
    the same key, so the store trains it once.
    """

    arm: Arm
    seed: int
    teacher: Optional["RunSpec"] = None
    init_from: Optional["RunSpec"] = None  # start from this run's final weights (arm.init_from)

    @property
    def key(self) -> str:
        # exclude_defaults: a field added later with a default leaves existing keys (and results) valid.
        canonical = json.dumps({"run": self.model_dump(mode="json", exclude_defaults=True),
                                "train_version": TRAIN_VERSION},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

