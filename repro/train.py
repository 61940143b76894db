"""One training run: RunSpec -> result dict (per-epoch metrics) and final weights.

Reads top to bottom: data, model, teacher, optimiser; then per epoch: lr, train steps, evaluate,
log. Every source of randomness (init, dropout, data order, jitter) derives from the run's seed.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext

import torch

from .data import jitter, load_dataset
from .models import create_model
from .registry import LOSSES
from .spec import RunSpec


def hashable(params: dict) -> dict:
    """YAML lists -> tuples, so dataset params can key the in-process dataset cache."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def build_model(run: RunSpec, dataset) -> torch.nn.Module:
    return create_model(run.arm.model.name, dataset.in_shape, dataset.num_classes, **run.arm.model.params)


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def lr_at(arm, epoch: int) -> float:
    if arm.schedule.name == "halve_every":
        return arm.optimizer.lr * 0.5 ** (epoch // arm.schedule.every)
    return arm.optimizer.lr


def make_optimizer(arm, params):
    opt = arm.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    return torch.optim.Adam(params, lr=opt.lr, weight_decay=opt.weight_decay)


def train_subset(arm, x, y):
    """A fixed subset (same for every seed: the data is part of the spec, not of the seed)."""
    if arm.train_subset is None or arm.train_subset >= len(y):
        return x, y
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[: arm.train_subset]
    return x[keep], y[keep]


@torch.inference_mode()
def evaluate(model, dataset, precision, device, batch_size=4096) -> dict:
    model.eval()
    wrong = torch.zeros(dataset.num_classes, dtype=torch.long)
    for i in range(0, len(dataset.test_y), batch_size):
        x = dataset.normalize(dataset.test_x[i: i + batch_size].to(device))
        y = dataset.test_y[i: i + batch_size].to(device)
        with autocast(precision, device):
            pred = model(x).argmax(dim=1)
        wrong += torch.bincount(y[pred != y].cpu(), minlength=dataset.num_classes)
    errors = int(wrong.sum())
    return {"test_errors": errors, "test_acc": 1 - errors / len(dataset.test_y),
            "test_errors_per_class": wrong.tolist()}


def train(run: RunSpec, device: torch.device, teacher: torch.nn.Module | None = None,
          on_epoch=None) -> tuple[dict, torch.nn.Module]:
    arm = run.arm
    torch.manual_seed(run.seed)  # init and dropout
    order = torch.Generator().manual_seed(run.seed)  # data order and augmentation

    dataset = load_dataset(arm.data.name, **hashable(arm.data.params))
    x_train, y_train = train_subset(arm, dataset.train_x, dataset.train_y)
    x_train, y_train = x_train.to(device), y_train.to(device)
    model = build_model(run, dataset).to(device)
    optimizer = make_optimizer(arm, model.parameters())
    loss_fn, loss_params = LOSSES.get(arm.loss.name), arm.loss.params
    if teacher is not None:
        # "train" reproduces sources that leave dropout on while producing soft targets.
        teacher.train(arm.teacher_mode == "train")

    history, status, started = [], "done", time.perf_counter()
    for epoch in range(arm.epochs):
        lr = lr_at(arm, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr

        model.train()
        sums = {"loss": 0.0, "hard": 0.0, "soft": 0.0, "correct": 0}
        perm = torch.randperm(len(y_train), generator=order).to(device)
        for i in range(0, len(perm), arm.batch_size):
            idx = perm[i: i + arm.batch_size]
            xb = dataset.normalize(jitter(x_train[idx], arm.jitter_px, order))
            yb = y_train[idx]
            with autocast(arm.precision, device):
                logits = model(xb)
                with torch.no_grad():
                    teacher_logits = teacher(xb) if teacher is not None else None
            parts = loss_fn(logits, yb, teacher_logits, **loss_params)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            for k in ("loss", "hard", "soft"):
                sums[k] += float(parts[k].detach()) * len(idx)
            sums["correct"] += int((logits.argmax(1) == yb).sum())

        n = len(y_train)
        metrics = {"epoch": epoch + 1, "lr": lr, "train_loss": sums["loss"] / n,
                   "train_hard": sums["hard"] / n, "train_soft": sums["soft"] / n,
                   "train_acc": sums["correct"] / n, **evaluate(model, dataset, arm.precision, device)}
        history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
        if not math.isfinite(metrics["train_loss"]):
            status = "diverged"  # the verdict counts it; the seed is not silently dropped
            break

    result = {"status": status, "epochs": history, "final": history[-1],
              "wall_s": time.perf_counter() - started, "device": describe_device(device)}
    return result, model


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    name = platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {name}, {torch.get_num_threads()} threads"
