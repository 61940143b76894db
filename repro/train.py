"""One training run: RunSpec -> result dict (per-epoch metrics) and the trained model.

Reads top to bottom: data, model, teacher, optimiser, resume; then per epoch: lr, train steps,
evaluate, log, checkpoint. Every source of randomness (init, dropout, data order, augmentation)
derives from the run's seed, and the RNG states are checkpointed with the weights, so a run
killed at epoch k and resumed ends with the same numbers as an uninterrupted one.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import sync_free
from .nets import augment_of, autocast, build_model, dataset_of, device_layout, predict
from .features import KDInputs
from .registry import LOSSES
from .spec import Arm, RunSpec, clip
from .store import atomic_torch_save, warn
from .teachers import SoftTargets


def lr_at(arm: Arm, epoch: int, plateau_lr: float) -> float:
    s, base = arm.schedule, arm.optimizer.lr
    if s.name == "halve_every":
        return base * 0.5 ** (epoch // s.every)
    if s.name == "step":
        return base * s.gamma ** (epoch // s.step_size)
    if s.name == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / arm.epochs))
    if s.name == "plateau":
        return plateau_lr
    return base


def make_optimizer(arm: Arm, params):
    """Fused steps: one kernel over all parameters instead of several passes each (SGD's step was 14%
    of a bf16 MLP step on CPU). Same update rule; last-bit rounding differs from the loop version."""
    opt = arm.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay, fused=True)
    cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
    return cls(params, lr=opt.lr, weight_decay=opt.weight_decay, fused=True)


class Plateau:
    """ReduceLROnPlateau(mode='min', threshold=1e-4 relative), as plain state that fits in a checkpoint."""

    def __init__(self, arm: Arm):
        self.lr, self.best, self.bad, self.arm = arm.optimizer.lr, math.inf, 0, arm

    def step(self, loss: float) -> None:
        if loss < self.best * (1 - 1e-4):
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
            if self.bad > self.arm.schedule.patience:
                self.lr, self.bad = self.lr * self.arm.schedule.factor, 0


def error_metrics(logits, labels, num_classes) -> dict:
    wrong = torch.bincount(labels[logits.argmax(1) != labels], minlength=num_classes)
    errors = int(wrong.sum())
    return {"test_errors": errors, "test_acc": 1 - errors / len(labels), "test_errors_per_class": wrong.tolist(),
            "test_loss": float(F.cross_entropy(logits, labels))}


def epoch_metrics(epoch: int, lr: float, sums: dict, seen: int, test_logits, test_labels, num_classes: int,
                  teacher_test_logits=None, step_acc: list | None = None) -> dict:
    """The epoch's training keys, and its test keys unless the epoch was not scored (test_logits None: eval_every)."""
    metrics = {"epoch": epoch + 1, "lr": lr, "train_loss": sums["loss"] / seen, "train_hard": sums["hard"] / seen,
               "train_soft": sums["soft"] / seen, "train_acc": sums["correct"] / seen,
               **(error_metrics(test_logits, test_labels, num_classes) if test_logits is not None else {})}
    if teacher_test_logits is not None and test_logits is not None:  # mean |teacher - student| logit, on the test set
        metrics["logit_gap"] = float((teacher_test_logits - test_logits).abs().mean())
        # top-1 agreement with the teacher on the test set (Stanton et al. 2021's "fidelity")
        metrics["fidelity"] = float((teacher_test_logits.argmax(1) == test_logits.argmax(1)).float().mean())
    if step_acc is not None:
        metrics["step_acc"] = step_acc
    return metrics


PARTS = ("loss", "hard", "soft")  # a loss function's components, as every result records them


class EpochTally:
    """An epoch's loss parts (each weighted by its batch size), correct count and, with log_steps, per-step
    accuracy. Where reading a number back is free (the CPU) each step's are read as they come, as every
    stored result was accounted; on a sync-free device (data.SYNC_FREE: a GPU, where float()/int() wait for
    every queued kernel) they are summed there in the same float64 and int64 arithmetic, the same order, and
    read back once, by `sums()` at the end of the epoch: the same numbers to the last bit (tests/test_train.py)."""

    def __init__(self, device):
        self.on_device = sync_free(device)
        self.parts = torch.zeros(3, dtype=torch.float64, device=device) if self.on_device else [0.0, 0.0, 0.0]
        self.correct, self.steps, self.sizes, self.seen = 0, [], [], 0

    def add(self, parts: dict, correct: torch.Tensor, n: int) -> None:
        """One step: its loss parts (scalar tensors), its correct count (an integer tensor) and batch size."""
        if self.on_device:
            self.parts += torch.stack([parts[k].detach().double() for k in PARTS]) * n
            self.correct = self.correct + correct
        else:
            for i, k in enumerate(PARTS):
                self.parts[i] += float(parts[k].detach()) * n
            correct = int(correct)
            self.correct += correct
        self.steps.append(correct)
        self.sizes.append(n)
        self.seen += n

    def sums(self) -> tuple[dict, int, list[float]]:
        """(sums of loss, hard, soft and correct, examples seen, per-step accuracies): the epoch's one read-back."""
        if self.on_device:
            counts = torch.stack([torch.as_tensor(self.correct, device=self.parts.device)] + self.steps).tolist()
            parts, correct, steps = self.parts.tolist(), counts[0], counts[1:]
        else:
            parts, correct, steps = self.parts, self.correct, self.steps
        sums = {**dict(zip(PARTS, parts)), "correct": correct}
        return sums, self.seen, [c / n for c, n in zip(steps, self.sizes)]


def track_best(history: list[dict], best: int | None, best_state, model, arm: Arm):
    """(best epoch, its weights if the arm reports its best epoch) after the epoch just appended."""
    if best is None or history[-1]["test_acc"] > history[best]["test_acc"]:
        best = len(history) - 1
        if arm.select == "best":
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return best, best_state


def epoch_state(model, optimizer_state: dict, plateau: list, rng, order: torch.Generator, history: list[dict],
                best, best_state, elapsed: float) -> dict:
    """What a resume file holds (train() and stacked.train_stacked write the same format)."""
    return {"model": model.state_dict(), "optimizer": optimizer_state, "plateau": plateau, "rng": rng,
            "order_rng": order.get_state(), "history": history, "best": best, "best_state": best_state,
            "elapsed": elapsed}


def final_metrics(history: list[dict], best: int, status: str, arm: Arm) -> dict:
    """The reported epoch: the last, or with `select: best` the best test accuracy (what several sources report)."""
    final = dict(history[best if arm.select == "best" and status == "done" else -1])
    final.pop("step_acc", None)
    return final


def bias_shift_metrics(model, dataset, arm: Arm, device, test_logits, test_labels) -> dict:
    """Errors before and after adding b to the chosen classes' logits, with b tuned on held-out
    training images and, as the paper did, on the test set itself."""
    classes = torch.tensor(arm.bias_shift.classes)

    def errors(logits, labels, b):
        shifted = logits.clone()
        shifted[:, classes] += b
        wrong = shifted.argmax(1) != labels
        return int(wrong.sum()), int((wrong & torch.isin(labels, classes)).sum())

    def tune(logits, labels):
        return min(arm.bias_shift.grid, key=lambda b: (errors(logits, labels, b)[0], abs(b)))

    out = {"shift_classes_test_count": int(torch.isin(test_labels, classes).sum())}
    out["errors_before"], out["class_errors_before"] = errors(test_logits, test_labels, 0.0)
    tunings = {"test": tune(test_logits, test_labels)}
    if dataset.holdout_x is not None:
        tunings["holdout"] = tune(*predict(model, dataset, arm, device, "holdout"))
    for where, b in tunings.items():
        out[f"bias_tuned_on_{where}"] = b
        out[f"errors_after_{where}"], out[f"class_errors_after_{where}"] = errors(test_logits, test_labels, b)
        out[f"class_acc_after_{where}"] = 1 - out[f"class_errors_after_{where}"] / out["shift_classes_test_count"]
        out[f"error_reduction_{where}"] = 1 - out[f"errors_after_{where}"] / max(out["errors_before"], 1)
    return out


def train(run: RunSpec, device: torch.device, teacher: torch.nn.Module | None = None,
          on_epoch=None, resume_path: Path | None = None, init: dict | None = None,
          on_weights=None, teacher_memo: dict | None = None) -> tuple[dict, torch.nn.Module]:
    """`on_weights(epoch, model)` after each finished epoch (1-based) lets the caller keep the weights of
    epochs a student asks for (Arm.teacher_epoch) without the run itself knowing about it. `teacher`: the network
    whose soft targets the run learns from (teachers.SoftTargets); `teacher_memo`: see teachers.teacher_predictions."""
    arm = run.arm
    torch.manual_seed(run.seed)  # init, dropout, and torchvision's PIL transforms
    order = torch.Generator().manual_seed(run.seed)  # data order and batch augmentation

    dataset = dataset_of(arm)
    model = device_layout(build_model(run).to(device), device)
    if init is not None:  # continue from another run's weights (the vit-cifar code's "student")
        model.load_state_dict(init)
    optimizer = make_optimizer(arm, model.parameters())
    plateau = Plateau(arm)
    forward = torch.compile(model) if arm.compile else model  # shares the parameters; state_dict keeps plain keys
    loss_fn, loss_params = LOSSES.get(arm.loss.name), arm.loss.params
    soft = SoftTargets(teacher, run, dataset, device, teacher_memo) if teacher is not None else None
    teacher_test_logits = soft.test if soft is not None else None
    # a feature loss's hooks and its own trainable modules (repro/features.py); nothing for a logit loss
    kd = KDInputs(arm.loss.name, loss_params, arm.features, model, soft.model if soft is not None else None,
                  dataset.in_shape_at(arm.resolution), device,
                  (arm.model.name, run.teacher.arm.model.name if run.teacher else "teacher"))
    kd.add_to(optimizer)

    history, status, best, best_state, elapsed = [], "done", None, None, 0.0
    if resume_path is not None and resume_path.exists():
        try:
            state = torch.load(resume_path, weights_only=True)
            model.load_state_dict(state["model"])
            kd.load_state_dict(state)
            optimizer.load_state_dict(state["optimizer"])
            plateau.lr, plateau.best, plateau.bad = state["plateau"]
            torch.set_rng_state(state["rng"])
            order.set_state(state["order_rng"])
            history, best, best_state, elapsed = state["history"], state["best"], state["best_state"], state["elapsed"]
            if not isinstance(history, list) or len(history) > arm.epochs:
                raise ValueError(f"its history has {len(history)} epochs, the run {arm.epochs}")
        except Exception as err:  # truncated, garbage or another run's state: start this run over, same seed
            warn(f"{resume_path}: damaged resume file ({clip(f'{type(err).__name__}: {err}', 100)}); "
                 "retraining the run from epoch 1 (same seed, same numbers)")
            resume_path.unlink(missing_ok=True)
            kd.remove()
            return train(run, device, teacher, on_epoch, resume_path, init, on_weights, teacher_memo)

    started = time.perf_counter() - elapsed
    test_labels = None
    for epoch in range(len(history), arm.epochs):
        lr = lr_at(arm, epoch, plateau.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr

        model.train()
        tally = EpochTally(device)
        for xb, yb, idx in dataset.train_batches(arm.batch_size, augment_of(arm), order, device):
            with autocast(arm.precision, device), kd.capturing():
                logits = forward(xb)
                with torch.no_grad():
                    teacher_logits = soft.batch(xb, idx) if soft is not None else None
            if arm.labels == "none":  # no label enters the loss: its targets (weight 0 on the hard term) and
                yb = teacher_logits.argmax(1)  # train_acc are the teacher's top class (spec.Arm.labels)
            parts = loss_fn(logits, yb, teacher_logits, **loss_params, **kd.inputs(epoch))
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            tally.add(parts, (logits.argmax(1) == yb).sum(), len(yb))

        sums, seen, step_acc = tally.sums()
        # eval_every: the test set is scored every Nth epoch and the last; spec.Arm.eval_every refuses checks that
        # would read a test key of an unscored epoch
        scored = (epoch + 1) % arm.eval_every == 0 or epoch + 1 == arm.epochs
        test_logits, test_labels = predict(model, dataset, arm, device) if scored else (None, None)
        metrics = epoch_metrics(epoch, lr, sums, seen, test_logits, test_labels, dataset.num_classes,
                                teacher_test_logits, step_acc if arm.log_steps else None)
        history.append(metrics)
        if scored:
            plateau.step(metrics["test_loss"])
            best, best_state = track_best(history, best, best_state, model, arm)
        if on_epoch:
            on_epoch(metrics)
        if on_weights:
            on_weights(epoch + 1, model)
        if not math.isfinite(metrics["train_loss"]):
            status = "diverged"  # the verdict counts it; the seed is not silently dropped
            break
        if resume_path is not None:
            atomic_torch_save(resume_path, {**epoch_state(
                model, optimizer.state_dict(), [plateau.lr, plateau.best, plateau.bad], torch.get_rng_state(), order,
                history, best, best_state, time.perf_counter() - started), **kd.state_dict()})

    kd.remove()
    final = final_metrics(history, best, status, arm)
    if arm.select == "best" and status == "done":
        model.load_state_dict(best_state)  # a teacher chosen this way teaches with these weights
    if arm.teacher_checkpoint is not None:  # the checkpoint teacher's own test metrics (it has no run of its own)
        labels = predict(model, dataset, arm, device)[1] if test_labels is None else test_labels
        checkpoint = error_metrics(teacher_test_logits, labels, dataset.num_classes)
        final.update(teacher_test_errors=checkpoint["test_errors"], teacher_test_acc=checkpoint["test_acc"])
    if arm.bias_shift is not None and status == "done":
        final.update(bias_shift_metrics(model, dataset, arm, device, *predict(model, dataset, arm, device)))
    result = {"status": status, "epochs": history, "final": final,
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
