"""YAML claim specs -> typed, validated objects; every error names the file, the key and what was expected.

A claim's `arms` are partial training configs on top of `defaults`. Variants (as_written,
corrected, ...) and profiles (smoke, quick, paper) override them with `all:` (every arm) and
`arms:` (one arm). `Claim.resolve(arm, variant, profile)` merges, in that order,
defaults <- arm <- variant <- profile, and validates the result into an `Arm`. Every combination
is resolved once at load time, so a bad override fails `repro validate`, not a run hours later.
"""
from __future__ import annotations

import copy
import errno
import functools
import hashlib
import inspect
import json
import os
import re
import stat
import typing
from pathlib import Path
import math
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, StringConstraints, ValidationError,
                      create_model, field_validator, model_validator)

from ..registry import CHECKS, DATASETS, LIMITS, LOSSES, MODELS, limited

# Bump when a change alters what training computes for an unchanged spec: it is part of every
# run key, so results from the old code stop counting as done (and are reported as stale).
# 2: dropout masks drawn with torch.rand (models.Dropout), fused optimiser steps.
TRAIN_VERSION = 2


class SpecError(ValueError):
    """A spec is malformed. Each of `lines` is one line, `file: key: what was expected`; str() joins them."""

    def __init__(self, *lines: str):
        self.lines = [clip(line, 1000) for line in lines]  # inputs are clipped where echoed; this is a backstop
        super().__init__("\n".join(self.lines))


def clip(text: str, width: int = 60) -> str:
    """At most `width` characters on one line: an error never prints more than a line of the input."""
    text = " ".join(str(text).split()) if "\n" in str(text) or "\r" in str(text) else str(text)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 3] + "..."


def public_path(path: str | Path, keep: int = 6) -> str:
    """A path as verdicts, reports and provenance show it: relative to the working folder when inside it, else
    its last `keep` parts after '.../': never this machine's absolute path (a home folder, a user name)."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    if path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd())) or "."
    return str(Path("...", *path.parts[1:][-keep:]))


# One pattern for every name that becomes a folder of the results store (claim ids, arms, variants,
# profiles): letters, digits, '_', '.', '-', starting with a letter or digit (so no '.', '..', '',
# hidden or absolute names), at most 64 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters"


def _not_blank(value: str, expected: str) -> str:
    """A one-line text the report shows: blank (spaces only) is no text."""
    if not value.strip():
        raise ValueError(f"blank; expected {expected}")
    return value


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{clip(repr(name), 40)} is not a safe name ({NAME_RULE})")
    return name


Name = Annotated[str, AfterValidator(check_name)]


class Strict(BaseModel):
    # strict: a YAML `true` is not the integer 1, "10" is not a number, 1 is not `true` (a float still takes an int)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


class ParamErrors(ValueError):
    """Errors in a component's parameters, each (key path, message): _format prints one line per error."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))


@functools.cache
def _params_model(builder, reserved: tuple[str, ...]):
    """A pydantic model of a builder's keyword parameters, from its annotated signature (strict: a
    string is not a number, a float is not an int); unannotated parameters take anything."""
    hints = typing.get_type_hints(builder, include_extras=True)
    fields = {name: (hints.get(name, Any), ... if p.default is inspect.Parameter.empty else p.default)
              for name, p in inspect.signature(builder).parameters.items() if name not in reserved
              and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return create_model(f"{builder.__name__}_params", __config__=ConfigDict(strict=True), **fields)


def _check_component(component: Component, registry, reserved: tuple[str, ...], context=None) -> Component:
    """Refuse unknown names, parameters the builder does not take, and values of the wrong type or range."""
    if component.name not in registry:
        raise ValueError(registry.unknown(clip(component.name, 40)))
    from ..plugins import unnamed_plugin
    owner = unnamed_plugin(registry.get(component.name), (context or {}).get("plugins", ()))
    if owner:
        raise ValueError(f"{registry.kind} '{component.name}' is registered by the plugin {clip(Path(owner).name, 60)}, "
                         "which this spec does not name: add it under `plugins:`")
    signature = inspect.signature(registry.get(component.name))
    named = {p: v for p, v in signature.parameters.items() if p not in reserved
             and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)}
    accepted = list(named)
    takes_any = any(v.kind == v.VAR_KEYWORD for v in signature.parameters.values())  # e.g. timm's own kwargs
    unknown = sorted(clip(k, 40) for k in set(component.params) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(f"{registry.kind} '{component.name}' takes no parameter {unknown}; it takes {accepted}")
    missing = [p for p, v in named.items() if v.default is inspect.Parameter.empty and p not in component.params]
    if missing:
        raise ValueError(f"{registry.kind} '{component.name}' needs parameter(s) {missing}")
    try:
        _params_model(registry.get(component.name), reserved).model_validate(component.params, context=context)
    except ValidationError as err:
        raise ParamErrors([(".".join(str(part) for part in e["loc"]), _message(e)) for e in err.errors()]) from None
    given_reserved = sorted(set(component.params) & set(reserved))
    if given_reserved:
        raise ValueError(f"{registry.kind} '{component.name}': {given_reserved} are set by kd-repro, not the spec")
    check_all = getattr(registry.get(component.name), "check_params", None)  # a builder's rule across its params
    if check_all is not None:
        check_all(component.params)
    return component


def dataset_fact(data: Component, name: str) -> int | None:
    """A dataset's `num_classes`, `n_train` or `n_test`: its builder's parameter of that name (as the spec sets
    it, or its default), else the builder's attribute of that name (a fixed dataset: mnist.n_train = 60000),
    else None (the dataset does not say, and nothing is checked against it)."""
    try:
        builder = DATASETS.get(data.name)
    except KeyError:
        return None
    param = inspect.signature(builder).parameters.get(name)
    value = data.params.get(name, param.default) if param is not None else getattr(builder, name, None)
    if name == "n_test" and isinstance(data.params.get("test_subset"), int) and isinstance(value, int):
        value = min(value, data.params["test_subset"])  # cifar10's test_subset
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Optimizer(Strict):
    name: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0, allow_inf_nan=False)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)


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

    classes: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    grid: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=lambda: [x / 2 for x in range(0, 41)], min_length=1, max_length=10_000)


class Arm(Strict):
    """One arm, fully resolved: everything `train` needs except the teacher's own training.
    Every field's description is its entry in docs/spec-reference.md (`repro reference`)."""

    model: Component = Field(description="the network: a model name and its parameters (see Models)")
    data: Component = Field(description="the dataset: a dataset name and its parameters (see Datasets)")
    loss: Component = Field(Component(name="ce"), description="the training loss and its parameters (see Losses)")
    teacher: Optional[str] = Field(None, description="another arm of the same claim whose trained model gives "
                                   "this arm's teacher logits (same seed, or the teacher's fixed_seed)")
    teacher_epoch: Optional[Annotated[int, Field(gt=0), limited("epochs")]] = Field(None, description="distil from the teacher's weights at the end of "
                                         "this epoch of its run instead of its final ones (the teacher run is "
                                         "not changed or retrained for it: it keeps those weights as it passes)")
    fixed_seed: Optional[Annotated[int, Field(ge=0, lt=2 ** 31)]] = Field(None, description="one model for every seed of the profile (a teacher file "
                                      "the source ships)")
    teacher_mode: Literal["eval", "train"] = Field("eval", description="'train': the teacher's dropout stays on "
                                                   "while producing soft targets")
    # What the teacher's soft targets are computed on. The default leaves every existing run key as it was
    # (keys hold only non-default fields); `fixed` is part of the key, so a fixed-teacher run is its own run.
    teacher_view: Literal["consistent", "fixed"] = Field("consistent", description="what the teacher sees: "
                                                         "'consistent': the student's own augmented batch, a teacher "
                                                         "forward per step (the default); 'fixed': the clean training "
                                                         "images (no augmentation), predicted once for the run and "
                                                         "reused every epoch (Beyer et al. 2022's fixed teacher)")
    init_from: Optional[str] = Field(None, description="another arm whose final weights this one starts from")
    optimizer: Optimizer = Field(description="name (sgd, adam, adamw), lr, momentum, weight_decay")
    schedule: Schedule = Field(Schedule(), description="learning rate per epoch (see Schedules)")
    epochs: Annotated[int, Field(gt=0), limited("epochs")] = Field(description="training epochs")
    batch_size: Annotated[int, Field(gt=0), limited("batch_size")] = Field(description="training batch size")
    jitter_px: Annotated[int, Field(ge=0), limited("resolution")] = Field(0, description="augmentation: random translation by up to this many pixels")
    crop_pad: Annotated[int, Field(ge=0), limited("resolution")] = Field(0, description="augmentation: pad by this many pixels, then random-crop back")
    hflip: bool = Field(False, description="augmentation: random horizontal flips")
    resolution: Optional[Annotated[int, Field(gt=0), limited("resolution")]] = Field(None, description="resize images to this side (train and test)")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast forward passes (loss in fp32)")
    compile: bool = Field(False, description="torch.compile the training forward (fuses kernels: last-bit "
                          "differences)")
    select: Literal["last", "best"] = Field("last", description="report the last epoch, or the epoch with the "
                                            "best test accuracy (a teacher chosen so teaches with those weights)")
    # Test-set scoring costs an epoch's worth of forward passes on a CPU for small nets; a claim read at the
    # last epoch needs it only there. The default (every epoch) leaves existing run keys unchanged.
    eval_every: Annotated[int, Field(ge=1), limited("epochs")] = Field(1, description="score the test set after "
                                         "every Nth epoch and after the last (default 1: every epoch); epochs "
                                         "between record training keys only. Needs the check read at the last "
                                         "epoch: no reducer over a test key, no `select: best`, no plateau schedule")
    log_steps: bool = Field(False, description="record running train accuracy per step (`step_acc`; "
                            "'learns faster' claims)")
    bias_shift: Optional[BiasShift] = Field(None, description="Hinton sec. 3: raise the output biases of "
                                            "`classes` after training, tuned over `grid`; records errors_after_*")

    # Soft targets computed once for the whole transfer set instead of a teacher forward per batch:
    # only where they cannot change between epochs (no augmentation, teacher in eval mode).
    cache_teacher_logits: bool = Field(False, description="compute the teacher's soft targets once for the "
                                       "whole transfer set (needs an eval-mode teacher and no augmentation)")

    @model_validator(mode="after")
    def _sparse_scoring_needs_no_per_epoch_test(self):
        if self.eval_every > 1 and (self.select == "best" or self.schedule.name == "plateau"):
            raise ValueError(f"eval_every: {self.eval_every} leaves epochs unscored, but "
                             + ("`select: best` picks the best-scored epoch" if self.select == "best" else
                                "the plateau schedule reads the test loss every epoch") + "; use eval_every: 1")
        return self

    @model_validator(mode="after")
    def _fixed_view_needs_a_fixed_teacher(self):
        if self.teacher_view == "fixed" and (self.teacher is None or self.teacher_mode != "eval"):
            raise ValueError("teacher_view: 'fixed' predicts once with a teacher in eval mode: the arm needs a "
                             "`teacher` and teacher_mode 'eval'")
        return self

    @model_validator(mode="after")
    def _cache_needs_fixed_targets(self):
        if self.cache_teacher_logits and (self.teacher is None or self.teacher_mode != "eval"
                                          or self.jitter_px or self.crop_pad or self.hflip):
            raise ValueError("cache_teacher_logits needs a teacher in eval mode and no augmentation "
                             "(jitter_px, crop_pad, hflip): otherwise the soft targets change every epoch; for a "
                             "teacher that sees the clean images while the student is augmented, use "
                             "teacher_view: fixed")
        return self

    @model_validator(mode="after")
    def _teacher_for_the_loss(self):
        """A loss that reads teacher logits needs a teacher arm (else the run would crash mid-plan)."""
        needs_teacher = inspect.signature(LOSSES.get(self.loss.name)).parameters[
            "teacher_logits"].default is inspect.Parameter.empty
        if needs_teacher and self.teacher is None:
            raise ValueError(f"loss: '{self.loss.name}' distils from a teacher, but the arm has no 'teacher' "
                             "(for a label-smoothed arm without a teacher: loss: {name: ce, label_smoothing: 0.1})")
        if self.teacher_epoch is not None and self.teacher is None:
            raise ValueError("teacher_epoch: the arm has no 'teacher' to take an epoch of")
        return self

    @model_validator(mode="after")
    def _classes_fit_the_data(self):
        """Class numbers and the held-out slice must fit the dataset: otherwise a traceback at run time, an
        empty training set, or a class both kept and omitted (which one wins is an accident of the code)."""
        params, name = self.data.params, self.data.name
        kept, omitted = set(params.get("keep_classes") or ()), set(params.get("omit_classes") or ())
        if kept & omitted:
            raise ValueError(f"data: class(es) {sorted(kept & omitted)} both kept (keep_classes) and omitted "
                             "(omit_classes); name each class in one of them")
        classes = dataset_fact(self.data, "num_classes")
        named = [("data.keep_classes", kept), ("data.omit_classes", omitted),
                 ("bias_shift.classes", set(self.bias_shift.classes) if self.bias_shift else set())]
        for key, values in named:
            if classes and values and max(values) >= classes:
                raise ValueError(f"{key}: class {max(values)} is out of range: dataset '{name}' has classes 0 to "
                                 f"{classes - 1}")
        n_train, holdout = dataset_fact(self.data, "n_train"), params.get("holdout") or 0
        if n_train and holdout >= n_train:
            raise ValueError(f"data.holdout: {holdout} leaves no training images (dataset '{name}' has {n_train})")
        return self

    _model = field_validator("model")(lambda v, info: _check_component(
        v, MODELS, ("in_shape", "num_classes"), info.context))
    _data = field_validator("data")(lambda v, info: _check_component(v, DATASETS, (), info.context))
    _loss = field_validator("loss")(lambda v, info: _check_component(
        v, LOSSES, ("student_logits", "targets", "teacher_logits"), info.context))


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
    """A statistical question about the runs (repro/stats.py has each kind's test). Every kind declares
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
        from ..stats import DERIVED, KEY_HELP
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
        from ..stats import DERIVED
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
    """Judge the claims group-sequentially (repro/sequential.py): a look after the profile's seeds, then after
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
    preconditions: list[Check] = []
    variants: dict[Name, Variant] = Field({"default": Variant()}, min_length=1)
    # Profile names are the user's: smoke (synthetic data, machinery only), quick and paper keep their
    # meaning in this project's claims; 'auto' is not a profile but `repro run`'s choice of quick/paper.
    # A claim whose arms are all observed (repro/observed.py) trains nothing and needs no profile.
    profiles: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")], Profile] = {}
    # Python modules with the claim's own models, datasets and losses (repro/plugins.py), imported by
    # load_claim before the arms are checked; nothing else is imported.
    plugins: list[str] = []
    _plugin_modules: tuple[str, ...] = PrivateAttr(())  # what load_claim imported for them (the arms may use)
    _observed: dict = PrivateAttr(default_factory=dict)  # (arm, variant) -> (Observed, values), from load_claim

    @property
    def observed(self) -> dict:
        """(arm, variant) -> (Observed, values) of the observed arms (repro/observed.py)."""
        return self._observed

    def is_observed(self, arm: str) -> bool:
        from .observed import is_observed
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
        named += [(f"preconditions.{i}.arms", a) for i, c in enumerate(self.preconditions) for a in c.arms]
        named += [(f"variants.{v}.arms", a) for v, o in self.variants.items() for a in o.arms]
        named += [(f"profiles.{p}.arms", a) for p, o in self.profiles.items() for a in o.arms]
        for where, arm in named:
            if arm not in self.arms:
                raise ValueError(f"{where}: unknown arm '{arm}'; arms are {sorted(self.arms)}")
        return self

    def resolve(self, arm: str, variant: str, profile: str) -> Arm:
        if self.is_observed(arm):
            raise ValueError(f"arm '{arm}' is observed (values measured elsewhere): it has no training config")
        v, p = self.variants[variant], self.profiles[profile]
        merged: dict = {}
        for layer in (self.defaults, self.arms[arm], v.all, v.arms.get(arm, {}), p.all, p.arms.get(arm, {})):
            merged = deep_merge(merged, layer)
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
            for link in ("teacher", "init_from"):
                other = merged.get(link)
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


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "name" not in value:
            out[key] = deep_merge(out[key], value)
        else:  # a component with a new name replaces the old one whole
            out[key] = copy.deepcopy(value)
    return out


def _message(error: dict) -> str:
    """pydantic's message for one error, with the offending value (clipped to a few words) unless it says it."""
    got, message = error.get("input"), error["msg"].removeprefix("Value error, ")
    shown = isinstance(got, dict) or error["type"] == "missing" or message.startswith(f"{got} ") or \
        (isinstance(got, str) and (repr(got) in message or clip(repr(got), 40) in message))
    return message if shown else f"{message} (got {clip(repr(got))})"


def _valid_keys(model, loc: tuple) -> list[str]:
    """The keys a model accepts at `loc` (its last part is the unknown key), for an 'Extra inputs' error."""
    annotation = model
    for part in loc[:-1]:
        while typing.get_origin(annotation) in (typing.Union, Annotated) or str(annotation).startswith("typing.Optional"):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    while typing.get_origin(annotation) in (typing.Union, Annotated):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return list(annotation.model_fields) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _format(err: ValidationError, prefix: str = "", model=None) -> list[str]:
    """One line per error: `key: what was expected (got value)`."""
    lines = []
    for error in err.errors():
        loc = error["loc"][:-2] if error["loc"][-1:] == ("[key]",) else error["loc"]  # a bad dict key: its dict
        key = ".".join(clip(part, 40) for part in map(str, loc))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ParamErrors):
            lines += [f"{prefix}{key}.{sub}: {message}" for sub, message in cause.errors]
            continue
        message = _message(error)
        if error["type"] == "extra_forbidden" and model is not None:
            valid = _valid_keys(model, error["loc"])
            message += f"; valid keys: {', '.join(valid)}" if valid else ""
        lines.append(f"{prefix}{key or '(top level)'}: {message}")
    return lines


# Bounds on what a spec file may make the YAML reader build: a spec is a page of text, and a few
# aliases may share a block; an alias bomb or 10^5 nesting levels fail at once instead of eating memory.
MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 100_000  # scalars, lists and mappings, aliases expanded


class SpecYAMLError(yaml.YAMLError):
    """A YAML document beyond what a spec may be (duplicate keys, too deep, an alias bomb): str() is the line."""


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys and bounds nesting depth and alias expansion."""

    depth = 0

    def compose_node(self, parent, index):
        if self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecYAMLError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise SpecYAMLError(f"line {key_node.start_mark.line + 1}: duplicate key '{clip(key, 40)}' "
                                        "(its second value would silently replace the first)")
                seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_size(node, sizes=None, open_=None) -> int:
    """How many values the document has with its aliases expanded (each shared node counted per use)."""
    sizes, open_ = ({}, set()) if sizes is None else (sizes, open_)
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        raise SpecYAMLError(f"line {node.start_mark.line + 1}: an alias refers to a block that contains it")
    open_.add(id(node))
    children = node.value if isinstance(node, yaml.SequenceNode) else \
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
    size = 1 + sum(expanded_size(child, sizes, open_) for child in children)
    if size > MAX_VALUES:
        raise SpecYAMLError(f"more than {MAX_VALUES} values once aliases are expanded (an alias bomb?)")
    open_.discard(id(node))
    sizes[id(node)] = size
    return size


class TooBig(OSError):
    """A file over the size a reader allows (`size`: its bytes)."""

    def __init__(self, size: int, limit: int):
        self.size = size
        super().__init__(errno.EFBIG, f"{size} bytes, over the {limit} bytes allowed here")


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A named pipe (which would block), a device
    (/dev/zero never ends), a folder or a bigger file (a sparse giant) raises OSError saying which, before a
    byte is read: the file is opened without blocking and its type and size come from that open file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket")
            raise OSError(errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.EINVAL,
                          f"{kind}, not a regular file")
        if info.st_size > limit:
            raise TooBig(info.st_size, limit)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew since fstat
            raise TooBig(len(data), limit)
        return data
    finally:
        os.close(fd)


def read_yaml(path: Path) -> dict:
    """A spec file as a dict; any problem reading it (missing, not a file, too big, not UTF-8 text,
    not YAML, duplicate keys, too deep) is one line naming the file."""
    if path.is_symlink() and not path.resolve().is_relative_to(path.parent.resolve()):
        # its content is not the claims folder's to show: nothing of it is read, so no error can echo it
        raise SpecError(f"{path}: a symlink to a file outside its folder; not read (a spec and its base file "
                        "live inside the claims folder)")
    try:
        data = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except TooBig as err:
        raise SpecError(f"{path}: {err.size} bytes; a spec is at most {MAX_BYTES} bytes") from None
    except OSError as err:
        raise SpecError(f"{path}: not readable ({clip(err.strerror or type(err).__name__)})") from None
    if len(data) > MAX_BYTES:
        raise SpecError(f"{path}: {len(data)} bytes; a spec is at most {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                        "save the spec as UTF-8") from None
    if "\x00" in text:
        raise SpecError(f"{path}: not a text file (it contains NUL bytes)")
    try:
        raw = yaml.load(text, Loader=SpecLoader)
    except SpecYAMLError as err:
        raise SpecError(f"{path}: {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise SpecError(f"{path}: {where}: not valid YAML ({clip(err.problem or err.context, 100)})") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({clip(err, 120)})") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid YAML (nested too deep)") from None
    if raw is None:
        raise SpecError(f"{path}: the file is empty; expected a mapping of claim fields")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: (top level): expected a mapping of claim fields, got {type(raw).__name__}")
    return raw


def base_file(path: Path, base) -> Path:
    """`base:` names a file inside the claims folder (the spec's folder), by a relative path."""
    folder = path.parent.resolve()
    target = (path.parent / base).resolve() if isinstance(base, str) and base and not Path(base).is_absolute() else None
    if target is None or not target.is_relative_to(folder) or not target.is_file():
        raise SpecError(f"{path}: base: expected the relative path of a file inside the spec's folder "
                        f"(e.g. _shared/source.yaml), got {clip(repr(base))}")
    return path.parent / target.relative_to(folder)


def load_claim(path: str | Path) -> Claim:
    """`base: _shared/x.yaml` (relative to the spec) merges the claim over a shared file, so claims of
    one source define their common arms (and hence share teacher runs) once. One level, no logic.
    Raises SpecError with one line per error found."""
    path = Path(path)
    return claim_from_raw(read_yaml(path), path)


def claim_from_raw(raw: dict, path: Path) -> Claim:
    """A claim from its spec as a dict (what the YAML reader gives), checked as load_claim checks a file;
    `path` names it in errors, and its folder is where `base:`, plugins and observed files are found."""
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: (top level): expected a mapping of claim fields, got {type(raw).__name__}")
    raw = dict(raw)
    if "base" in raw:
        base_path = base_file(path, raw.pop("base"))
        base = read_yaml(base_path)
        if "base" in base:
            raise SpecError(f"{base_path}: base: a shared file cannot have a base itself")
        raw = deep_merge(base, raw)
    from ..plugins import load_plugins
    plugin_errors, modules = load_plugins(raw.get("plugins"), path)  # before the arms: they name what it registers
    if plugin_errors:
        raise SpecError(*plugin_errors)
    try:
        claim = Claim.model_validate(raw, context={"plugins": modules})
    except ValidationError as err:
        raise SpecError(*capped([f"{path}: {line}" for line in _format(err, model=Claim)], path)) from None
    errors: dict[str, str] = {}  # one line per distinct problem, with the first combination that shows it
    if claim.id != path.stem:
        errors["id"] = f"{path}: id: expected '{clip(path.stem)}' (the file name), got '{claim.id}'"
    try:
        order = claim.teacher_order()
    except ValueError as err:
        raise SpecError(*errors.values(), f"{path}: {clip(err, 200)}") from None
    from .observed import load_observed
    claim._observed, observed_errors = load_observed(claim, path.parent)
    errors.update({line: f"{path}: {line}" for line in observed_errors})
    resolved: dict[tuple[str, str, str], Arm] = {}
    also: dict[str, list[str]] = {}  # an arm problem -> the other arms that have it too
    for variant in claim.variants:
        for profile in claim.profiles:
            for arm in [a for a in order if not claim.is_observed(a)]:
                try:
                    resolved[arm, variant, profile] = claim.resolve(arm, variant, profile)
                except ValidationError as err:
                    context = f"arms.{arm} (variant '{variant}', profile '{profile}')."
                    for line in _format(err, model=Arm):  # "(top level)" of an arm: a rule across its keys
                        where = context.removesuffix(".") + line.removeprefix("(top level)") \
                            if line.startswith("(top level):") else context + line
                        # one line per problem (the first arm, variant and profile that show it), naming
                        # every other arm that has it too (two arms with one unknown model: both named)
                        if line in errors and arm not in also.setdefault(line, []) and f"arms.{arm} " not in errors[line]:
                            also[line].append(arm)
                        errors.setdefault(line, f"{path}: {where}")
    for (arm, variant, profile), spec in resolved.items():  # a teacher epoch its run never reaches
        teacher = resolved.get((spec.teacher, variant, profile)) if spec.teacher_epoch else None
        if teacher is not None and spec.teacher_epoch > teacher.epochs:
            errors.setdefault(f"teacher_epoch.{arm}", f"{path}: arms.{arm} (variant '{variant}', profile '{profile}')."
                              f"teacher_epoch: {spec.teacher_epoch} is beyond the last epoch ({teacher.epochs}) of its "
                              f"teacher '{spec.teacher}'")
    for where, check in [("check", claim.check)] + [(f"preconditions.{i}", c) for i, c in enumerate(claim.preconditions)]:
        for (arm, variant), (obs, _) in claim.observed.items():
            if arm in check.arms and check.metric != obs.metric:
                errors.setdefault(f"{where}.observed.{arm}", f"{path}: {where}.metric: '{clip(check.metric, 40)}', but "
                                  f"arm '{arm}' is observed as '{obs.metric}' (the check reads its values as that metric)")
        if check.paired and any(claim.is_observed(a) for a in check.arms):
            errors.setdefault(f"{where}.paired", f"{path}: {where}.paired: observed values carry no seeds to pair "
                              "by; leave `paired` unset (the comparison is unpaired)")
        for (arm, variant, profile), spec in resolved.items():
            problem = metric_problem(check.metric, spec) if arm in check.arms else None
            if problem:
                errors.setdefault(f"{where}.{problem}", f"{path}: {where}.metric: {problem} "
                                                        f"(arm '{arm}', variant '{variant}', profile '{profile}')")
    for line, arms in also.items():
        if arms:
            errors[line] += f" (the same in arm{'s' if len(arms) > 1 else ''} {', '.join(arms)})"
    if errors:
        raise SpecError(*capped(list(errors.values()), path))
    return claim


MAX_ERRORS = 20  # per file: beyond that, a count (a 5000-item list of wrong values is one mistake)


def capped(lines: list[str], path: Path) -> list[str]:
    if len(lines) <= MAX_ERRORS:
        return lines
    return lines[:MAX_ERRORS] + [f"{path}: ... and {len(lines) - MAX_ERRORS} more errors"]


def metric_problem(metric: str, arm: Arm) -> str | None:
    """Why a run of `arm` will not record `metric` (repro.metrics), or None."""
    from ..metrics import REDUCERS, recorded_keys
    reducer, _, key = metric.rpartition(":")
    epoch_keys, final_keys = recorded_keys(teacher=arm.teacher is not None, bias_shift=arm.bias_shift is not None,
                                           holdout=bool(arm.data.params.get("holdout")))
    if reducer and reducer not in REDUCERS:
        return f"unknown reducer '{clip(reducer, 30)}' in '{clip(metric, 40)}'; known: {', '.join(REDUCERS)}"
    known = epoch_keys if reducer else epoch_keys + final_keys
    if key not in known:
        return f"'{clip(key, 40)}' is not recorded by this run{' per epoch' if reducer else ''}; known: {', '.join(known)}"
    if reducer and arm.eval_every > 1 and key in TEST_KEYS:
        return (f"'{clip(metric, 40)}' reduces a test key over the epochs, but eval_every: {arm.eval_every} scores "
                "the test set only every few epochs (use eval_every: 1, or a metric of the last epoch)")
    return None


TEST_KEYS = ("test_errors", "test_acc", "test_loss", "logit_gap", "fidelity")  # scored on the test set


SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(folder: str | Path) -> list[Path]:
    # families.yaml declares the folder's Holm families (repro.family), not a claim
    return sorted(p for p in Path(folder).iterdir() if p.suffix in SPEC_SUFFIXES and not p.name.startswith(".")
                  and p.name != "families.yaml")


def load_claims(folder: str | Path = "claims") -> dict[str, Claim]:
    """Every claim of a folder (*.yaml and *.yml); a bad file is reported with every other bad file."""
    if not Path(folder).is_dir():
        raise SpecError(f"{folder}: not a folder of claim specs")
    paths = spec_files(folder)
    if not paths:
        raise SpecError(f"{folder}: no claim specs (*.yaml) found")
    claims, errors = {}, []
    for path in paths:
        try:
            claim = load_claim(path)
        except SpecError as err:
            errors += err.lines
            continue
        if claim.id in claims:
            errors.append(f"{path}: id: '{claim.id}' is also the id of another spec in {folder}")
        claims[claim.id] = claim
    if errors:
        raise SpecError(*errors)
    return claims


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

