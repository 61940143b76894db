"""Several seeds of one MLP arm trained at once, as one batched model (torch.func: stacked weights, vmap).

The same math as training each seed with train.train: each seed keeps its own init, data order and
augmentation, and the loss is the sum of the per-seed losses, so each seed's weights get exactly its
own gradient (tests/test_stacked.py trains both ways and compares). It pays where a step waits on
per-op overhead rather than arithmetic: on a GPU, and on a 2-core CPU for tiny nets (the 30-30
student: 1.7x in bf16, 1.3x in fp32), while the 800-800 student's compute-bound step measured slower
stacked (`make bench`). So `repro run` stacks only when asked (--stack-seeds).

Arms with dropout, batch norm, a plateau schedule, bias-shift metrics or a per-step teacher forward
are not stacked (`why_not_stackable` says which): dropout under vmap would draw other masks than
the one-by-one run, and the rest are per-seed state or per-seed work that stacking cannot share.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch

from .features import RUN_INPUTS, takes
from .registry import LOSSES
from .spec import RunSpec, clip
from .store import atomic_torch_save, warn
from .nets import augment_of, build_model, dataset_of, predict
from .teachers import stacked_targets
from .train import EpochTally, describe_device, epoch_metrics, epoch_state, final_metrics, lr_at, make_optimizer, \
    track_best


def why_not_stackable(runs: list[RunSpec]) -> str | None:
    """None if these runs can train as one stacked model, else the reason."""
    arm, params = runs[0].arm, runs[0].arm.model.params
    checks = [(len(runs) < 2, "a single run"),
              (any(r.arm != arm or r.init_from for r in runs), "runs differ in more than the seed or start from a run"),
              (len({r.seed for r in runs}) < len(runs), "the same seed twice (a fixed-seed arm)"),
              (arm.model.name != "mlp", f"model {arm.model.name} is not an MLP"),
              (params.get("input_dropout", 0) or params.get("hidden_dropout", 0), "dropout masks would differ"),
              (params.get("batch_norm", False), "batch norm"),
              (arm.compile, "torch.compile"),
              (arm.schedule.name == "plateau", "plateau schedule (a per-seed learning rate)"),
              (arm.bias_shift is not None, "bias-shift metrics"),
              (arm.eval_every > 1, "eval_every (the stacked loop scores every epoch)"),
              (arm.teacher is not None and not arm.cache_teacher_logits, "a teacher forward per step"),
              (bool(arm.teachers), "several teachers"),
              (arm.teacher_checkpoint is not None, "a checkpoint teacher"),
              (arm.labels == "none", "training without labels"),
              (any(takes(LOSSES.get(arm.loss.name), n) for n in RUN_INPUTS), "a loss that reads features or the epoch"),
              (not hasattr(dataset_of(arm), "train_x"), "not an in-memory dataset")]
    return next((why for failed, why in checks if failed), None)


def unstack(value, s: int):
    """Seed s's slice of a stacked optimiser-state entry; scalars (Adam's step) and None are shared."""
    return value[s] if isinstance(value, torch.Tensor) and value.dim() > 0 else value


def restack(values: list):
    """The inverse of unstack over the seeds' entries."""
    return torch.stack(values) if isinstance(values[0], torch.Tensor) and values[0].dim() > 0 else values[0]


def stack(models: list[torch.nn.Module], precision: str):
    """The models' weights stacked as (n, ...) leaf tensors, and forward((n, batch, ...)) -> (n, batch, classes)."""
    params, buffers = torch.func.stack_module_state(models)
    skeleton = copy.deepcopy(models[0]).to("meta")
    vmapped = torch.vmap(lambda p, b, x: torch.func.functional_call(skeleton, (p, b), (x,)))

    def forward(x):
        if precision == "bf16":  # autocast does not reach inside vmap: cast as it would for a Linear/ReLU net
            return vmapped({k: v.to(torch.bfloat16) for k, v in params.items()}, buffers, x.to(torch.bfloat16))
        return vmapped(params, buffers, x)
    return params, forward


def train_stacked(runs: list[RunSpec], device: torch.device, teachers: list[torch.nn.Module] | None = None,
                  state_paths: list[Path] | None = None) -> list[tuple[dict, torch.nn.Module]]:
    """train.train for every run at once; same results and per-seed resume files in train's format."""
    if why := why_not_stackable(runs):
        raise ValueError(f"cannot stack these runs: {why}")
    arm, n = runs[0].arm, len(runs)
    dataset = dataset_of(arm)
    models, rng_states = [], []
    for run in runs:  # each seed's init exactly as train() draws it
        torch.manual_seed(run.seed)
        models.append(build_model(run).to(device))
        rng_states.append(torch.get_rng_state())
    orders = [torch.Generator().manual_seed(run.seed) for run in runs]
    params, forward = stack(models, arm.precision)
    optimizer = make_optimizer(arm, params.values())
    loss_fn, loss_params = LOSSES.get(arm.loss.name), arm.loss.params
    teacher_train = teacher_test = [None] * n
    if teachers is not None:
        teacher_test, teacher_train = stacked_targets(teachers, arm, dataset, device)

    histories, best, best_state, status, elapsed = [[] for _ in runs], [None] * n, [None] * n, ["done"] * n, 0.0
    try:
        states = [torch.load(p, weights_only=True) for p in state_paths if p.exists()] if state_paths else []
        if len(states) == n and len({len(s["history"]) for s in states}) == 1:  # all seeds stopped at one epoch
            for name, value in params.items():
                value.data.copy_(torch.stack([s["model"][name] for s in states]))
            seed_states = [s["optimizer"]["state"] for s in states]
            optimizer.load_state_dict({**optimizer.state_dict(), "state": {
                i: {k: restack([st[i][k] for st in seed_states]) for k in entry} for i, entry in seed_states[0].items()}})
            for o, s in zip(orders, states):
                o.set_state(s["order_rng"])
            histories, best, best_state = [s["history"] for s in states], [s["best"] for s in states], \
                [s["best_state"] for s in states]
            elapsed = states[0]["elapsed"]
    except Exception as err:  # a truncated or mismatched resume file: start the group over, same seeds
        warn(f"{', '.join(str(p) for p in state_paths if p.exists())}: damaged resume file(s) "
             f"({clip(f'{type(err).__name__}: {err}', 100)}); retraining these runs from epoch 1 (same seeds, same numbers)")
        for p in state_paths:
            p.unlink(missing_ok=True)
        return train_stacked(runs, device, teachers, state_paths)

    started = time.perf_counter() - elapsed
    for epoch in range(len(histories[0]), arm.epochs):
        lr = lr_at(arm, epoch, arm.optimizer.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr

        tallies = [EpochTally(device) for _ in runs]
        for batches in zip(*(dataset.train_batches(arm.batch_size, augment_of(arm), o, device) for o in orders)):
            xb, yb = torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
            logits = forward(xb)
            parts = [loss_fn(logits[s], yb[s], None if teacher_train[s] is None else teacher_train[s][batches[s][2]]
                             .to(device), **loss_params) for s in range(n)]
            optimizer.zero_grad(set_to_none=True)
            sum(p["loss"] for p in parts).backward()  # d(sum)/d(seed s's weights) = d(loss_s)/d(them)
            optimizer.step()

            correct = (logits.argmax(-1) == yb).sum(1)
            for s in range(n):
                tallies[s].add(parts[s], correct[s], yb.shape[1])

        for s, model in enumerate(models):
            if status[s] != "done":
                continue
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(params[name][s])
            sums, seen, step_acc = tallies[s].sums()
            metrics = epoch_metrics(epoch, lr, sums, seen, *predict(model, dataset, arm, device),
                                    dataset.num_classes, teacher_test[s], step_acc if arm.log_steps else None)
            histories[s].append(metrics)
            best[s], best_state[s] = track_best(histories[s], best[s], best_state[s], model, arm)
            if not math.isfinite(metrics["train_loss"]):
                status[s] = "diverged"
        if state_paths is not None:
            optimizer_state = optimizer.state_dict()
            for s, model in enumerate(models):
                seed_optimizer = {**optimizer_state, "state": {i: {k: unstack(v, s) for k, v in entry.items()}
                                                               for i, entry in optimizer_state["state"].items()}}
                atomic_torch_save(state_paths[s], epoch_state(
                    model, seed_optimizer, [arm.optimizer.lr, math.inf, 0], rng_states[s], orders[s], histories[s],
                    best[s], best_state[s], time.perf_counter() - started))
        if all(st != "done" for st in status):
            break

    out = []
    for s, model in enumerate(models):
        if arm.select == "best" and status[s] == "done":
            model.load_state_dict(best_state[s])
        # wall_s: the group's time, shared equally among its seeds
        final = final_metrics(histories[s], best[s], status[s], arm)
        out.append(({"status": status[s], "epochs": histories[s], "final": final,
                     "wall_s": (time.perf_counter() - started) / n, "device": describe_device(device)}, model))
    return out
