"""Teachers: one place that turns a student's teacher declaration into the soft targets it learns from.

A teacher is a trained arm of the same claim (`teacher: <arm>`, at its final weights or at `teacher_epoch`),
several of them as one Ensemble (`teacher: [a, b]`), or a weights file in the claims folder
(`teacher_checkpoint:`, below). It gives logits per training batch (a forward per step, or its predictions on
the clean training images computed once: `cache_teacher_logits`, `teacher_view: fixed`) and on the test set
(for the logit gap and fidelity, and a checkpoint teacher's own test metrics).
"""
from __future__ import annotations

import copy
import hashlib
import io

import torch

from .data import sync_free
from .models import WeightsMissing, create_model
from .nets import build_model, dataset_of, device_layout, predict
from .spec import Arm, RunSpec, clip
from .spec.checkpoint import CHECKPOINT_FILES, read_checkpoint


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
    who = run.teacher.key if run.teacher is not None else \
        arm.teacher_checkpoint.sha256 if arm.teacher_checkpoint is not None else None
    key = None if memo is None or who is None else \
        (who, arm.teacher_epoch, repr(arm.data), arm.train_on, arm.resolution, arm.precision, once, str(device))
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
    several teachers are one Ensemble of theirs; a checkpoint teacher its file's weights (checkpoint_network)."""
    if run.arm.teacher_checkpoint is not None:
        return checkpoint_network(run.arm)
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
    if run.arm.teacher_checkpoint is not None:
        return checkpoint_model(run.arm).to(device)
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
        self.model = device_layout(cast_teacher(teacher, arm.precision).to(device), device)
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
# to 1); the spec moves it to `Arm.teachers` (repro/spec/arm.py), so a single-teacher arm is written, and
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


# --- a teacher from a checkpoint --------------------------------------------------------------------------------
#
# An arm writes
#
#     teacher_checkpoint: {file: teacher.pt, sha256: <64 hex digits>, model: {name: mlp, hidden: [256, 256]}}
#
# `file` is relative to the claims folder and inside it, and must hash to `sha256`; it holds a state dict (what
# `torch.save(model.state_dict(), path)` writes) that `model`, built for the arm's dataset, loads with strict keys
# and shapes. The sha256 is part of the arm, hence of the run key: another checkpoint is another run. Loading the
# claim (repro/spec/assemble.py) checks the file and hash and records where the file is (CHECKPOINT_FILES, by its
# hash: no machine's path enters a key); `repro validate` and `repro run` check the keys and shapes before any
# training (repro/preflight.py). The network is frozen and never trained; its test metrics go into the
# student's result (`teacher_test_errors`, `teacher_test_acc`).

def checkpoint_model(arm: Arm) -> torch.nn.Module:
    """The checkpoint's network, built for the arm's dataset (its images' shape and class count), untrained."""
    ckpt, dataset = arm.teacher_checkpoint, dataset_of(arm)
    return create_model(ckpt.model.name, dataset.in_shape_at(arm.resolution), dataset.num_classes,
                        **ckpt.model.params)


def checkpoint_network(arm: Arm) -> torch.nn.Module:
    """The arm's checkpoint teacher: its file (found by hash, and hashed again as read) loaded strictly into its
    network, in eval mode, frozen. WeightsMissing where the file was not checked by a loaded claim, or the
    weights do not fit the network (their claim is then NOT RUN, the others train)."""
    ckpt = arm.teacher_checkpoint
    path = CHECKPOINT_FILES.get(ckpt.sha256)
    if path is None:
        raise WeightsMissing(f"teacher_checkpoint '{clip(ckpt.file, 60)}' (sha256 {ckpt.sha256[:12]}...) was not "
                             "found by a loaded claim in this process (load the claim that names it)")
    try:
        data = read_checkpoint(path)
    except FileNotFoundError:
        raise WeightsMissing(f"teacher_checkpoint '{clip(ckpt.file, 60)}': no such file in the claims folder "
                             f"{clip(path.parent.name, 40)}/ (make it, or copy it there, with sha256 "
                             f"{ckpt.sha256[:12]}...)") from None
    except OSError as err:
        raise WeightsMissing(f"teacher_checkpoint '{clip(ckpt.file, 60)}' cannot be read "
                             f"({err.strerror or type(err).__name__})") from None
    if hashlib.sha256(data).hexdigest() != ckpt.sha256:
        raise WeightsMissing(f"teacher_checkpoint '{clip(ckpt.file, 60)}' changed since its claim was loaded "
                             "(its sha256 differs)")
    model = checkpoint_model(arm)
    try:
        model.load_state_dict(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu"), strict=True)
    except RuntimeError as err:  # missing or unexpected keys, or a shape that differs
        raise WeightsMissing(f"teacher_checkpoint '{clip(ckpt.file, 60)}' does not fit model "
                             f"'{ckpt.model.name}': {checkpoint_mismatch(err)}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def checkpoint_mismatch(err: RuntimeError) -> str:
    """load_state_dict's error (several lines, every key) as one line: the first problem and how many."""
    lines = [" ".join(line.split()) for line in str(err).splitlines()[1:] if line.strip()]
    first = lines[0] if lines else " ".join(str(err).split())
    return clip(first, 200) + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")
