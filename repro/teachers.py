"""Teachers: one place that turns a student's teacher declaration into the soft targets it learns from.

Today a teacher is a trained arm of the same claim (`teacher: <arm>`, at its final weights or at
`teacher_epoch`), giving logits per training batch (a forward per step, or its predictions on the clean
training images computed once: `cache_teacher_logits`, `teacher_view: fixed`) and on the test set (for the
logit gap and fidelity). Other kinds of teacher (several arms, a checkpoint, cached logits) are added here.
"""
from __future__ import annotations

import copy

import torch

from .nets import predict
from .spec import RunSpec


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
