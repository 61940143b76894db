"""Teachers: one place that turns a student's teacher declaration into the soft targets it learns from.

Today a teacher is a trained arm of the same claim (`teacher: <arm>`, at its final weights or at
`teacher_epoch`), giving logits per training batch (a forward per step, or its predictions on the clean
training images computed once: `cache_teacher_logits`, `teacher_view: fixed`) and on the test set (for the
logit gap and fidelity). Other kinds of teacher (several arms, a checkpoint, cached logits) are added here.
"""
from __future__ import annotations

import copy

import torch

from .data import sync_free
from .nets import build_model, device_layout, predict
from .spec import Arm, RunSpec


def cast_teacher(teacher: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Under bf16 autocast a frozen teacher's weights would be re-cast every step (a quarter of a KD
    step's time on CPU). Cast them once instead: for Linear/ReLU/dropout nets this gives bit-identical
    logits (tests/test_train.py). Nets with batch norm keep autocast's own handling."""
    if precision != "bf16" or any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in teacher.modules()):
        return teacher
    return copy.deepcopy(teacher).to(torch.bfloat16)


TEACHERS_MEMOISED = 8  # teacher_predictions' memo keeps this many (a CIFAR train split's logits: 2 MB)


def teacher_predictions(teacher, run: RunSpec, dataset, device, memo: dict | None) -> tuple:
    """The teacher's test logits (for the logit gap) and, with cache_teacher_logits or teacher_view 'fixed', its
    logits on the clean (unaugmented) training images (else None). Every student of one teacher needs the same
    ones: a caller training several (the executor) passes a memo, and they are computed once per process
    instead of once per run (a minute per ViT student)."""
    arm = run.arm
    once = arm.cache_teacher_logits or arm.teacher_view == "fixed"
    if once and not hasattr(dataset, "train_x"):
        raise ValueError(f"teacher_view/cache_teacher_logits: dataset '{arm.data.name}' is not held in memory, "
                         "so its images have no fixed index to keep the teacher's predictions by")
    key = None if memo is None or run.teacher is None else \
        (run.teacher.key, arm.teacher_epoch, repr(arm.data), arm.resolution, arm.precision, once, str(device))
    if key in (memo or {}):
        return memo[key]
    test, _ = predict(teacher, dataset, arm, device)
    train_split = predict(teacher, dataset, arm, device, split="train")[0] if once else None
    if key is not None:
        memo[key] = (test, train_split)
        while len(memo) > TEACHERS_MEMOISED:
            memo.pop(next(iter(memo)))
    return test, train_split


def teacher_network(run: RunSpec, trained) -> torch.nn.Module | None:
    """The network that teaches `run`, or None: its teacher arm's run, at its final weights or those at the end of
    `teacher_epoch`, as `trained(run, epoch)` gives them (the executor's: stored, or retrained where missing);
    several teachers are one Ensemble of theirs."""
    if run.teachers:
        return Ensemble([trained(t, None) for t in run.teachers], list(run.arm.teachers.values()),
                        run.arm.teacher_aggregate, loss_temperature(run.arm.loss.params))
    return trained(run.teacher, run.arm.teacher_epoch) if run.teacher else None


def kept_epochs(runs) -> list[tuple[str, int]]:
    """(teacher run key, epoch) for each run that distils from its teacher's weights at the end of an epoch
    (Arm.teacher_epoch): the teacher keeps those weights when it trains."""
    return [(run.teacher.key, run.arm.teacher_epoch) for run in runs
            if run.teacher is not None and run.arm.teacher_epoch is not None]


def stand_in(run: RunSpec, device) -> torch.nn.Module | None:
    """A network of `run`'s teacher's architecture with untrained weights, or None (timing: a step costs the same
    whatever the weights)."""
    return teacher_network(run, lambda r, epoch: build_model(r).to(device))


class Teachers:
    """The teachers of the runs one executor trains: each student's teacher network (`trained(run, epoch)`), and
    a memo that computes a teacher's logits once for all its students (teacher_predictions)."""

    def __init__(self, trained):
        self.trained = trained
        self.memo: dict = {}

    def network(self, run: RunSpec) -> torch.nn.Module | None:
        return teacher_network(run, self.trained)


class SoftTargets:
    """What a student's training loop asks its teacher for: logits per training batch (`batch`), and on the test
    set (`test`, for the logit gap and fidelity)."""

    def __init__(self, teacher: torch.nn.Module, run: RunSpec, dataset, device, memo: dict | None = None):
        arm = run.arm
        self.device = device
        self.model = device_layout(cast_teacher(teacher, arm.precision), device)
        self.test, self.train_split = teacher_predictions(self.model, run, dataset, device, memo)
        if self.train_split is not None and sync_free(device):  # on the device once, not a copy per step
            self.train_split = self.train_split.to(device)
        # "train" reproduces sources that leave dropout on while producing soft targets.
        self.model.train(arm.teacher_mode == "train")

    def batch(self, xb: torch.Tensor, idx) -> torch.Tensor:
        """The teacher's logits for a training batch `xb` of images `idx` (called under no_grad and the run's
        autocast): its stored predictions on the clean images, or a forward pass."""
        if self.train_split is not None:
            return self.train_split[idx].to(self.device)
        return self.model(xb)


def stacked_targets(teachers: list[torch.nn.Module], arm: Arm, dataset, device) -> tuple[list, list]:
    """Stacked seeds' teachers (one per seed: stacking needs soft targets computed once): each one's test logits,
    and its logits on the clean training images, on the device."""
    teachers = [cast_teacher(t, arm.precision) for t in teachers]
    teacher_test = [predict(t, dataset, arm, device)[0] for t in teachers]
    teacher_train = [predict(t, dataset, arm, device, split="train")[0].to(device) for t in teachers]
    return teacher_test, teacher_train


# --- several teachers as one ----------------------------------------------------------------------------------------
#
# Their logits (or probabilities at the loss's temperature) averaged with weights.
#
# An arm writes `teacher: [t1, t2, t3]` (equal weights) or `teacher: {t1: 2, t2: 1}` (weights, normalised to sum
# to 1); the spec moves it to `Arm.teachers` (repro/spec/schema.py), so a single-teacher arm is written, and
# keyed, as before. `teacher_aggregate` says how they are combined:
#
# - `logits` (default): the weighted mean of the members' logits.
# - `probabilities`: the weighted mean of softmax(logits / T), T the loss's `T` (1 for a loss without one),
#   returned as T log(mean p): softmax(out / T) is then exactly the mean probability, so every loss reads it
#   as it reads one teacher's logits (and logit_gap / fidelity are measured against it).
#
# The ensemble is one frozen module (train.py treats it as the teacher); each member is its own stored run,
# trained once and shared with every claim that names it.

class Ensemble(torch.nn.Module):
    def __init__(self, members: list[torch.nn.Module], weights: list[float], aggregate: str = "logits",
                 T: float = 1.0):
        super().__init__()
        if aggregate not in ("logits", "probabilities"):
            raise ValueError(f"teacher_aggregate: 'logits' or 'probabilities', got {aggregate!r}")
        self.members = torch.nn.ModuleList(members)
        total = float(sum(weights))
        self.weights = [w / total for w in weights]
        self.aggregate, self.T = aggregate, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([m(x).float() for m in self.members])  # (members, batch, classes)
        w = torch.tensor(self.weights, dtype=outs.dtype, device=outs.device).view(-1, 1, 1)
        if self.aggregate == "logits":
            return (w * outs).sum(0)
        log_p = torch.log_softmax(outs / self.T, dim=-1) + w.log()
        return self.T * torch.logsumexp(log_p, dim=0)


def loss_temperature(loss_params: dict) -> float:
    return float(loss_params.get("T", 1.0))
