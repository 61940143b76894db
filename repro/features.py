"""Hidden features for feature-based KD: modules named by path, captured with forward hooks; a loss's own modules.

An arm names modules of its student and teacher by their `named_modules()` path (torchdistill's way: models are
never rewritten to return features):

    features: {student: ["6"], teacher: ["9"]}       # one (student, teacher) pair per position

Forward hooks keep each named module's output while a capture is on (`Taps.capturing()`), in train and eval
mode alike; a hook returns None, so the model's own output is unchanged. A module run twice in one forward
keeps its last output.

A loss that reads features takes them as keyword arguments kd-repro sets (RUN_INPUTS, never the spec):
`student_features` and `teacher_features` (lists in the order the arm names them), `head` (the module the
loss built, below) and `epoch` (1-based, for a loss with a warm-up). A loss with parameters of its own (a
FitNets regressor) declares a builder, `loss.build_head = fn(student_shapes, teacher_shapes, **params)`,
called once before training with the features' shapes (one probe forward of a zero batch in eval mode);
the module it returns trains with the student in the arm's optimiser (a param group of its own, same
settings) and is saved in the run's resume file beside the student, so a killed run resumes exactly.
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Annotated, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .registry import LOSSES

# Keyword arguments of a loss that the training loop fills (spec/arm.py refuses them in a spec).
RUN_INPUTS = ("student_features", "teacher_features", "head", "epoch")

Path_ = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Features(BaseModel):
    """The spec's `features:` of an arm: module paths of the student and of the teacher, paired by position."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    student: list[Path_] = Field(min_length=1, max_length=64, description="the student's module paths")
    teacher: list[Path_] = Field(min_length=1, max_length=64, description="the teacher's module paths, one per "
                                 "student path (paired by position)")


def takes(loss_fn, name: str) -> bool:
    return name in inspect.signature(loss_fn).parameters


def reads_features(loss_name: str) -> bool:
    """Does this registered loss read hidden features (and so need the arm's `features:`)?"""
    return takes(LOSSES.get(loss_name), "student_features")


def arm_problem(loss_name: str, features: Optional[Features], teacher, compile_: bool, cached: bool) -> str | None:
    """One line on what is wrong between an arm's loss and its `features:` (None: nothing)."""
    if loss_name not in LOSSES:
        return None  # the loss's own validator names the unknown loss
    if reads_features(loss_name) and features is None:
        return (f"loss '{loss_name}' reads hidden features: name them with "
                "`features: {student: [<module path>], teacher: [<module path>]}`")
    if features is None:
        return None
    if not reads_features(loss_name):
        return f"features: loss '{loss_name}' reads no hidden features (a feature loss: fitnets, attention_transfer)"
    if len(features.student) != len(features.teacher):
        return (f"features: {len(features.student)} student and {len(features.teacher)} teacher paths; they are "
                "paired by position, so name as many of each")
    if teacher is None:
        return "features: the arm has no `teacher` to take teacher features from"
    if compile_:
        return "features: forward hooks are not used with `compile: true`; set compile: false"
    if cached:
        return ("features: the teacher's features are computed per step; cache_teacher_logits and teacher_view: "
                "fixed keep only its logits")
    return None


def paths_problem(model: torch.nn.Module, paths: list[str], who: str, model_name: str) -> str | None:
    """One line naming the paths `model` lacks and listing the paths it has (None: all found)."""
    known = [name for name, _ in model.named_modules() if name]
    missing = [p for p in paths if p not in set(known)]
    if not missing:
        return None
    listed = ", ".join(known[:80]) + (f", ... ({len(known)} in all)" if len(known) > 80 else "")
    shown = ", ".join(repr(p if len(p) <= 40 else p[:37] + "...") for p in missing[:5])
    return f"features.{who}: model '{model_name}' has no module {shown}; its module paths: {listed}"


def check_paths_cheaply(features: Features, student_model, teacher_model) -> str | None:
    """At spec load: build the student and teacher models (Components) on the meta device (no memory, no
    data: names do not depend on the input's shape) and check the paths. Models that cannot be built so
    (None returned by the builder's error) are checked before training instead."""
    from .models import create_model
    for who, component, paths in (("student", student_model, features.student),
                                  ("teacher", teacher_model, features.teacher)):
        if component is None:
            continue
        try:
            with torch.device("meta"):
                model = create_model(component.name, (3, 32, 32), 10, **component.params)
        except Exception:  # noqa: BLE001 (a model that needs real data or weights: checked before training)
            continue
        problem = paths_problem(model, paths, who, component.name)
        if problem:
            return problem
    return None


class Taps:
    """Forward hooks on the named modules of one model; `take()` returns their outputs in the named order."""

    def __init__(self, model: torch.nn.Module, paths: list[str], who: str = "student", model_name: str = "model"):
        problem = paths_problem(model, paths, who, model_name)
        if problem:
            raise ValueError(problem)
        modules = dict(model.named_modules())
        self.paths, self.on, self.kept = list(paths), False, {}
        self.handles = [modules[p].register_forward_hook(self._hook(i)) for i, p in enumerate(paths)]

    def _hook(self, i: int):
        def keep(module, inputs, output):
            if self.on:
                self.kept[i] = output
            # returns None: the module's output (hence the model's) is unchanged
        return keep

    @contextlib.contextmanager
    def capturing(self):
        self.on = True
        try:
            yield self
        finally:
            self.on = False

    def take(self) -> list[torch.Tensor]:
        missing = [p for i, p in enumerate(self.paths) if i not in self.kept]
        if missing:
            raise RuntimeError(f"features: module(s) {missing} did not run in the forward pass")
        out, self.kept = [self.kept[i] for i in range(len(self.paths))], {}
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles, self.kept = [], {}


def probe_shapes(model: torch.nn.Module, taps: Taps, in_shape: tuple[int, ...], device) -> list[tuple[int, ...]]:
    """The named features' shapes (without the batch dimension): one forward of a zero batch of 2 in eval
    mode, with the RNG state restored after it (a dropout that stays on in eval would draw from it)."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), taps.capturing():
            param = next(model.parameters(), None)
            dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
            model(torch.zeros((2, *in_shape), device=device, dtype=dtype))
            return [tuple(f.shape[1:]) for f in taps.take()]
    finally:
        model.train(was_training)


class KDInputs:
    """What a loss reads beyond logits and labels, for one run: feature taps on the student and teacher, the
    loss's own module (head) and the epoch. With a loss that reads none of these it does nothing, so the
    training loop is the same for every loss."""

    def __init__(self, loss_name: str, loss_params: dict, features: Optional[Features], student, teacher,
                 in_shape: tuple[int, ...], device, names: tuple[str, str] = ("student", "teacher")):
        self.loss_fn = LOSSES.get(loss_name)
        self.wants = {name for name in RUN_INPUTS if takes(self.loss_fn, name)}
        self.student_taps = self.teacher_taps = self.head = None
        if features is not None and "student_features" in self.wants:
            self.student_taps = Taps(student, features.student, "student", names[0])
            self.teacher_taps = Taps(teacher, features.teacher, "teacher", names[1])
            build = getattr(self.loss_fn, "build_head", None)
            if build is not None:
                shapes = (probe_shapes(student, self.student_taps, in_shape, device),
                          probe_shapes(teacher, self.teacher_taps, in_shape, device))
                self.head = build(*shapes, **loss_params)  # None: the loss only checks the shapes
                if self.head is not None:
                    self.head.to(device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.head.parameters()) if self.head is not None else []

    def add_to(self, optimizer: torch.optim.Optimizer) -> None:
        """The head trains with the student: a param group of its own, with the optimiser's settings."""
        if self.parameters():
            optimizer.add_param_group({"params": self.parameters()})

    @contextlib.contextmanager
    def capturing(self):
        with contextlib.ExitStack() as stack:
            for taps in (self.student_taps, self.teacher_taps):
                if taps is not None:
                    stack.enter_context(taps.capturing())
            yield self

    def inputs(self, epoch: int) -> dict:
        """The loss's extra keyword arguments for a step of `epoch` (0-based, passed on 1-based)."""
        out = {}
        if self.student_taps is not None:
            out["student_features"] = self.student_taps.take()
            out["teacher_features"] = self.teacher_taps.take()
        if "head" in self.wants:
            out["head"] = self.head
        if "epoch" in self.wants:
            out["epoch"] = epoch + 1
        return out

    def train(self, mode: bool = True) -> None:
        if self.head is not None:
            self.head.train(mode)

    def state_dict(self) -> dict:
        """What the resume file keeps beside the student (nothing without a head: old files unchanged)."""
        return {"head": self.head.state_dict()} if self.head is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.head is not None:
            if "head" not in state:
                raise ValueError("the resume file has no weights for the loss's head")
            self.head.load_state_dict(state["head"])

    def remove(self) -> None:
        for taps in (self.student_taps, self.teacher_taps):
            if taps is not None:
                taps.remove()
