"""An arm's typed model: what one training config may say (model, data, loss, optimiser, schedule, teacher ...),
with the components (registry name + parameters) checked against their builders' annotated signatures."""
from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator,
                      model_validator)

from ..features import RUN_INPUTS, Features, arm_problem
from ..registry import DATASETS, LOSSES, MODELS, limited
from .errors import ParamErrors, _message, check_name, clip

Name = Annotated[str, AfterValidator(check_name)]  # a name that becomes a folder of the results store

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


def held_in_memory(data: Component) -> bool | None:
    """Whether a dataset's builder returns tensors held in memory (repro.data.TensorDataset), by its return
    annotation: False for one read from files (hymenoptera), None where the builder does not say (a plugin)."""
    try:
        returns = inspect.signature(DATASETS.get(data.name)).return_annotation
    except KeyError:
        return None
    if returns is inspect.Signature.empty:
        return None
    return (returns if isinstance(returns, str) else getattr(returns, "__name__", "")) == "TensorDataset"


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


class Checkpoint(Strict):
    """A teacher read from a weights file instead of trained here: `teacher_checkpoint: {file, sha256, model}`.

    `file` is relative to the claims folder and inside it; `sha256` its hash (checked at load: another file is
    another run, and a changed file is refused); `model` the network that reads it, as an arm's `model`. The
    weights are loaded with torch.load(weights_only=True) and load_state_dict(strict=True), frozen, never trained
    (repro/teachers.py)."""

    file: str = Field(min_length=1, max_length=300, description="the weights file, relative to the claims folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the file's sha256 (64 lowercase hex digits)")
    model: Component = Field(description="the network that reads it: a model name and its parameters")

    _model = field_validator("model")(lambda v, info: _check_component(
        v, MODELS, ("in_shape", "num_classes"), info.context))


class Arm(Strict):
    """One arm, fully resolved: everything `train` needs except the teacher's own training.
    Every field's description is its entry in docs/spec-reference.md (`repro reference`)."""

    model: Component = Field(description="the network: a model name and its parameters (see Models)")
    data: Component = Field(description="the dataset: a dataset name and its parameters (see Datasets)")
    loss: Component = Field(Component(name="ce"), description="the training loss and its parameters (see Losses)")
    teacher: Optional[str] = Field(None, description="another arm of the same claim whose trained model gives "
                                   "this arm's teacher logits (same seed, or the teacher's fixed_seed)")
    # Several teachers: the spec writes `teacher: [a, b]` or `teacher: {a: 2, b: 1}`; _several_teachers moves them
    # here, so `teacher` stays one arm's name (or none) and single-teacher run keys are unchanged.
    teachers: Optional[dict[Name, Annotated[float, Field(gt=0, allow_inf_nan=False)]]] = Field(
        None, description="several teachers (written as `teacher: [a, b]` or `teacher: {a: 2, b: 1}`): arm name -> "
        "weight (a list: equal weights), combined as `teacher_aggregate` says (repro/teachers.py)")
    teacher_checkpoint: Optional[Checkpoint] = Field(None, description="a teacher read from a weights file in the "
                                                     "claims folder instead of a trained arm: `{file, sha256, "
                                                     "model}` (repro/teachers.py); its sha256 is part of the run key")
    teacher_aggregate: Literal["logits", "probabilities"] = Field("logits", description="several teachers: the "
                                                                  "weighted mean of their logits, or of their "
                                                                  "probabilities at the loss's T")
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
    features: Optional[Features] = Field(None, description="hidden features a feature loss reads (fitnets, "
                                         "attention_transfer): `{student: [path], teacher: [path]}`, module paths "
                                         "of named_modules(), paired by position (repro/features.py)")

    # The transfer set: the defaults leave every existing run key as it was.
    train_on: Literal["kept", "holdout"] = Field("kept", description="the images the arm trains on: 'kept', the "
                                                 "training images left after data.holdout (and train_subset, "
                                                 "keep/omit_classes); 'holdout', the data.holdout images held out "
                                                 "of them (a split disjoint from a 'kept' arm's)")
    labels: Literal["used", "none"] = Field("used", description="'none': the arm trains without labels (a transfer "
                                            "set of unlabelled images): it needs a teacher and a loss whose hard-"
                                            "label weight is 0, and the loss's targets are the teacher's top class")

    # Soft targets computed once for the whole transfer set instead of a teacher forward per batch:
    # only where they cannot change between epochs (no augmentation, teacher in eval mode).
    cache_teacher_logits: bool = Field(False, description="compute the teacher's soft targets once for the "
                                       "whole transfer set (needs an eval-mode teacher and no augmentation)")

    @model_validator(mode="before")
    @classmethod
    def _several_teachers(cls, value):
        """`teacher: [a, b]` / `{a: w, b: w}` -> `teachers` (a list: weight 1 each); one line per mistake."""
        if isinstance(value, dict) and isinstance(value.get("teacher"), (list, dict)):
            value = dict(value)
            named = value.pop("teacher")
            if "teachers" in value:
                raise ValueError("write several teachers as `teacher: [a, b]` or `teacher: {a: 2, b: 1}`, not both "
                                 "`teacher` and `teachers`")
            if isinstance(named, list):
                bad = [clip(repr(n), 40) for n in named if not isinstance(n, str)]
                if bad:
                    raise ValueError(f"teacher: a list of arm names, found {', '.join(bad)}")
                twice = sorted({n for n in named if named.count(n) > 1})
                if twice:
                    raise ValueError(f"teacher: {twice} named twice; give a weight instead: "
                                     "`teacher: {a: 2, b: 1}`")
                named = {n: 1.0 for n in named}
            if len(named) < 2:
                raise ValueError("teacher: several teachers need at least two arms; one teacher is `teacher: name`")
            value["teachers"] = named
        return value

    @property
    def teacher_names(self) -> list[str]:
        """Every arm this arm learns from as a teacher (one, several, or none)."""
        return list(self.teachers) if self.teachers else [self.teacher] if self.teacher else []

    @property
    def has_teacher(self) -> bool:
        """Does the arm learn from a teacher: another arm (one or several) or a checkpoint?"""
        return bool(self.teacher_names) or self.teacher_checkpoint is not None

    @model_validator(mode="after")
    def _sparse_scoring_needs_no_per_epoch_test(self):
        if self.eval_every > 1 and (self.select == "best" or self.schedule.name == "plateau"):
            raise ValueError(f"eval_every: {self.eval_every} leaves epochs unscored, but "
                             + ("`select: best` picks the best-scored epoch" if self.select == "best" else
                                "the plateau schedule reads the test loss every epoch") + "; use eval_every: 1")
        return self

    @model_validator(mode="after")
    def _fixed_view_needs_a_fixed_teacher(self):
        if self.teacher_view == "fixed" and (self.teacher is None and self.teacher_checkpoint is None
                                             or self.teacher_mode != "eval"):
            raise ValueError("teacher_view: 'fixed' predicts once with a teacher in eval mode: the arm needs a "
                             "`teacher` and teacher_mode 'eval'")
        return self

    @model_validator(mode="after")
    def _fixed_targets_need_data_in_memory(self):
        if (self.teacher_view == "fixed" or self.cache_teacher_logits) and held_in_memory(self.data) is False:
            key = "teacher_view: 'fixed'" if self.teacher_view == "fixed" else "cache_teacher_logits"
            raise ValueError(f"{key} keeps the teacher's predictions by image index, but dataset "
                             f"'{self.data.name}' is read from files batch by batch, not held in memory; "
                             "use teacher_view: consistent")
        return self

    @model_validator(mode="after")
    def _cache_needs_fixed_targets(self):
        if self.cache_teacher_logits and (self.teacher is None and self.teacher_checkpoint is None
                                          or self.teacher_mode != "eval"
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
        if self.teacher_checkpoint is not None and self.teacher_names:
            raise ValueError("teacher_checkpoint: the arm also names a `teacher` arm; a student learns from one or "
                             "the other")
        if self.teacher_checkpoint is not None and self.teacher_epoch is not None:
            raise ValueError("teacher_epoch: a checkpoint teacher has only the weights of its file")
        if needs_teacher and not self.has_teacher:
            raise ValueError(f"loss: '{self.loss.name}' distils from a teacher, but the arm has no 'teacher' "
                             "(for a label-smoothed arm without a teacher: loss: {name: ce, label_smoothing: 0.1})")
        if self.teacher_epoch is not None and self.teacher is None:
            raise ValueError("teacher_epoch: the arm has no 'teacher' to take an epoch of" +
                             (" (several teachers: each is its own run's final weights)" if self.teachers else ""))
        if self.teacher_aggregate != "logits" and not self.teachers:
            raise ValueError("teacher_aggregate: applies to several teachers (`teacher: [a, b]`)")
        if self.teachers and (self.features is not None or self.cache_teacher_logits or self.teacher_view == "fixed"):
            raise ValueError("several teachers: features, cache_teacher_logits and teacher_view: fixed take one teacher")
        return self

    @model_validator(mode="after")
    def _features_for_the_loss(self):
        problem = arm_problem(self.loss.name, self.features, self.teacher or self.teacher_checkpoint, self.compile,
                              self.cache_teacher_logits or self.teacher_view == "fixed")
        if problem:
            raise ValueError(problem)
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

    @model_validator(mode="after")
    def _transfer_set(self):
        """train_on: holdout needs a held-out slice in memory; labels: none a teacher and a loss that reads no label."""
        if self.train_on == "holdout":
            if not self.data.params.get("holdout"):
                raise ValueError("train_on: 'holdout' trains on the images data.holdout keeps out; set data.holdout "
                                 "to their number (e.g. data: {name: mnist, holdout: 30000})")
            if held_in_memory(self.data) is False:
                raise ValueError(f"train_on: 'holdout': dataset '{self.data.name}' is read from files, with no "
                                 "held-out slice")
            if self.bias_shift is not None:
                raise ValueError("train_on: 'holdout': bias_shift tunes on the held-out images, which this arm "
                                 "trains on")
        if self.labels == "none":
            if not self.has_teacher:
                raise ValueError("labels: 'none' trains on a teacher's targets alone: the arm needs a `teacher` "
                                 "(or a teacher_checkpoint)")
            from ..losses import hard_weight
            weight, how = hard_weight(self.loss.name, self.loss.params)
            if weight is None:
                raise ValueError(f"labels: 'none': loss '{self.loss.name}' does not declare the weight of its "
                                 "hard-label term (`hard_weight`), so it cannot be told to use no label")
            if weight != 0:
                raise ValueError(f"labels: 'none': loss '{self.loss.name}' weights the hard labels by {weight:g}; "
                                 + (f"set {how} so that it reads none" if how else "it cannot train without them"))
        return self

    _model = field_validator("model")(lambda v, info: _check_component(
        v, MODELS, ("in_shape", "num_classes"), info.context))
    _data = field_validator("data")(lambda v, info: _check_component(v, DATASETS, (), info.context))
    _loss = field_validator("loss")(lambda v, info: _check_component(
        v, LOSSES, ("student_logits", "targets", "teacher_logits", *RUN_INPUTS), info.context))
