"""What a plan will cost before it is paid: `repro run --dry-run` lists the runs and their estimated minutes.

An estimate comes from timings already stored (`wall_s` of result files in the store), best match first:
  1. another seed of the same arm (the same resolved config but the seed): its seconds as they are;
  2. a run of the same model, dataset, batch size, precision and teacher or none: its seconds per epoch
     times this run's epochs (another schedule, loss or optimiser costs about the same per step);
  3. with `--probe`: one epoch of one such run, trained here and thrown away (its teacher, if any, a freshly
     built net of the teacher's architecture: a step costs the same whatever the weights), times its epochs;
  4. otherwise none: the run is listed as "no stored timing". A run shared by several claims (a teacher)
     is counted once.
Timings are those of the machine that stored them (their `device` is shown), so a store filled on a GPU
estimates a CPU badly: the line says where each estimate comes from.

Also the convergence rule `repro run` and the verdicts warn with (`unconverged`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

UNCONVERGED_DROP = 0.05  # relative fall of the training loss over the last epoch that counts as still learning


def unconverged(result: dict) -> str | None:
    """Why a finished run looks unconverged, or None. The rule: over its last epoch the mean training loss
    still fell by more than 5% of its value (train_loss[-2] - train_loss[-1] > 0.05 train_loss[-2]): a run
    stopped while it was still learning fast, whose test numbers measure the budget more than the method.
    Runs of one epoch, diverged runs and observed values are not judged."""
    epochs = result.get("epochs") or []
    if result.get("status") != "done" or len(epochs) < 2:
        return None
    try:
        before, last = float(epochs[-2]["train_loss"]), float(epochs[-1]["train_loss"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(before) and math.isfinite(last)) or before <= 0:
        return None
    drop = (before - last) / before
    if drop > UNCONVERGED_DROP:
        return (f"training loss still fell {drop:.0%} in its last epoch ({before:.4g} -> {last:.4g}, epoch "
                f"{len(epochs)}): unconverged by the rule of a fall over {UNCONVERGED_DROP:.0%}")
    return None


def _normal(arm: dict) -> dict:
    """An arm's config without its default values (as run keys hold it), so a field added since a result was
    stored does not make its arm look different."""
    from .spec import Arm
    defaults = {name: f.get_default(call_default_factory=True) for name, f in Arm.model_fields.items()}
    defaults = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in defaults.items()}
    return {k: v for k, v in arm.items() if k not in defaults or v != defaults[k]}


def _signature(arm: dict, loose: bool) -> str:
    """An arm's config as a key: whole (rule 1), or only what sets the cost of a step (rule 2)."""
    arm = _normal(arm)
    if not loose:
        return json.dumps(arm, sort_keys=True)
    keep = ("model", "data", "batch_size", "precision", "resolution", "compile", "cache_teacher_logits", "teacher_view")
    return json.dumps({k: arm.get(k) for k in keep}, sort_keys=True)


def stored_timings(results_root: Path) -> tuple[dict, dict]:
    """(whole-arm signature -> [(seconds, device)], cost signature -> [(seconds per epoch, device)]) from every
    result file in the store (unreadable files are skipped: a dry run reads, it does not judge)."""
    whole: dict[str, list] = {}
    per_epoch: dict[str, list] = {}
    for path in sorted(Path(results_root).glob("*/*/*/*/seed*-*.json")):
        try:
            payload = json.loads(path.read_text())
            arm, seconds, epochs = payload["run"]["arm"], float(payload["wall_s"]), len(payload["epochs"])
            teacher = payload["run"].get("teacher") is not None
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not math.isfinite(seconds) or seconds <= 0 or not epochs:
            continue
        device = payload.get("device", "?")
        whole.setdefault(_signature(arm, False), []).append((seconds, device))
        per_epoch.setdefault(_signature(arm, True) + f"|teacher={teacher}", []).append((seconds / epochs, device))
    return whole, per_epoch


def estimate(run, timings: tuple[dict, dict]) -> tuple[float | None, str]:
    """(seconds or None, where the estimate comes from) for one RunSpec."""
    whole, per_epoch = timings
    arm = run.arm.model_dump(mode="json")
    same = whole.get(_signature(arm, False))
    if same:
        seconds = sum(s for s, _ in same) / len(same)
        return seconds, f"{len(same)} stored run(s) of this arm ({same[0][1]})"
    similar = per_epoch.get(_signature(arm, True) + f"|teacher={run.teacher is not None}")
    if similar:
        seconds = sum(s for s, _ in similar) / len(similar) * run.arm.epochs
        return seconds, f"{len(similar)} stored run(s) of this model and data, per epoch x {run.arm.epochs} ({similar[0][1]})"
    return None, "no stored timing of this model and data"


def probe(run, device) -> float:
    """Seconds of one epoch of `run` here (training and evaluation), with an untrained teacher of its
    architecture; the dataset is loaded before the clock starts. Nothing is stored."""
    import time
    from .nets import dataset_of
    from .teachers import stand_in
    from .train import train
    dataset_of(run.arm)
    teacher = stand_in(run, device)
    one = run.model_copy(update={"arm": run.arm.model_copy(update={"epochs": 1, "select": "last"})})
    started = time.perf_counter()
    train(one, device, teacher)
    return time.perf_counter() - started


def dry_run(jobs: list, store, probe_device=None) -> list[str]:
    """The lines `repro run --dry-run` prints: every distinct run to train with its estimate, then the totals.
    A stored teacher whose weights are not in the cache (a fresh clone has results, not checkpoints) is
    retrained for its students, so it is listed too. `probe_device`: time one epoch here for runs no stored
    timing covers."""
    timings = stored_timings(store.root)
    probed: dict[str, float] = {}
    lines, seen, total, unknown, to_train, stored = [], set(), 0.0, 0, 0, 0

    def is_stored(job) -> bool:
        return job.path.exists() or store.done(job.run.key) is not None

    stored_keys = {job.run.key for job in jobs if is_stored(job)}
    retrain = {job.run.teacher.key for job in jobs if job.run.teacher is not None and job.run.key not in stored_keys
               and job.run.teacher.key in stored_keys and not store.checkpoint_path(job.run.teacher).exists()}
    for job in jobs:
        run, where = job.run, f"{job.claim}/{job.variant}/{job.arm} seed {job.run.seed}"
        if run.key in seen:  # a run shared by several claims, variants or seeds: once
            continue
        seen.add(run.key)
        if run.key in retrain:
            where += " (stored, but its weights are not cached: retrained for its students)"
        elif run.key in stored_keys:
            stored += 1
            continue
        to_train += 1
        seconds, source = estimate(run, timings)
        group = _signature(run.arm.model_dump(mode="json"), True) + f"|teacher={run.teacher is not None}"
        if seconds is None and probe_device is not None:
            if group not in probed:
                probed[group] = probe(run, probe_device)
            seconds, source = probed[group] * run.arm.epochs, f"a one-epoch probe here x {run.arm.epochs}"
        if seconds is None:
            unknown += 1
            lines.append(f"  to train   {where}: ? ({source})")
        else:
            total += seconds
            lines.append(f"  to train   {where}: ~{seconds / 60:.1f} min (from {source})")
    summary = (f"dry run: {len(seen)} distinct runs, {stored} stored (not listed), {to_train} to train, about "
               f"{total / 60:.1f} minutes" + (f" plus {unknown} run(s) with no stored timing" if unknown else "")
               + "; nothing was stored" + (f" ({len(probed)} one-epoch probe(s) trained and discarded)" if probed else ""))
    return lines + [summary]
