"""`repro verify`: retrain a sample of stored runs on this machine and say what the shipped evidence is worth here.

What is bit-for-bit repeatable: the same run spec and seed on the same hardware, thread count and library
versions. Anything else (another CPU kind, another thread count, a GPU, another torch) changes the order of
floating-point sums, and the numbers are then a fresh draw from the same distribution, not the same numbers.
So per run this says whether every per-epoch number came out identical ("bitwise"), and over the sample
whether the fresh numbers are consistent with the spread the stored seeds show.

The consistency test: for a run of arm A, d = fresh - stored of the claim's metric. If both are draws from
A's seed distribution (independent at worst, positively correlated when the hardware is close), d has a
variance of at most 2 s^2, s the seed-to-seed standard deviation of A's stored runs (plus the rounding
variance 1/12 of a count). t = d / (s sqrt 2) is compared with Student's t on (seeds - 1) degrees of freedom,
two-sided, and the sample's p is Bonferroni's min(1, k min p): small means the fresh numbers are not from the
stored distribution (a changed loop, a broken install), not merely other rounding. Fresh runs go to a scratch
folder; nothing stored is touched.
"""
from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

import torch
from scipy import stats as sps

from .metrics import run_value
from .plan import variant_jobs
from .store import CorruptResult, Store
from .nets import build_model
from .train import describe_device, train


def stored_runs(claims: dict, profile: str, store: Store) -> list[tuple]:
    """(job, stored result, the same arm's stored values of the claim's metric) per distinct run key."""
    seen, out = set(), []
    for claim in claims.values():
        if profile not in claim.profiles:
            continue
        for variant in claim.variants:
            jobs = variant_jobs(claim, variant, profile, store)
            found = []
            for job in jobs:
                try:
                    result = store.find(job.path, job.run.key)
                except CorruptResult:
                    continue
                if result is not None:
                    found.append((job, result))
            for job, result in found:
                if job.run.key in seen:
                    continue
                seen.add(job.run.key)
                arm = [r for j, r in found if j.arm == job.arm]
                out.append((job, result, [_value(r, job.metric) for r in arm]))
    return out


def _value(result: dict, metric: str) -> float:
    try:
        value = run_value(result, metric)
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan
    return math.nan if value is None else float(value)


def choose(runs: list[tuple], n: int, store: Store) -> list[tuple]:
    """n runs that can be retrained from what is here (no teacher, or a teacher whose weights are cached: a
    student of an uncached teacher would retrain the teacher too), the cheapest of each arm first."""
    def teachable(job) -> bool:
        return all(r is None or store.checkpoint_path(r, job.run.arm.teacher_epoch if r is job.run.teacher else None)
                   .exists() for r in (job.run.teacher, job.run.init_from))
    usable = sorted([r for r in runs if teachable(r[0]) and r[1]["status"] == "done"],
                    key=lambda r: (r[1]["wall_s"], r[0].run.key))
    rank: dict[tuple, int] = {}  # one run of every arm before a second of any: the sample spans the arms
    for job, _, _ in usable:
        rank[job.run.key] = rank.setdefault((job.claim, job.variant, job.arm), 0)
        rank[(job.claim, job.variant, job.arm)] += 1
    return sorted(usable, key=lambda r: rank[r[0].run.key])[:n]


def retrain(job, store: Store, device: torch.device) -> dict:
    """The run trained afresh here (resume state in a scratch folder); teachers are read from the cache."""
    def weights(run, epoch=None):
        model = build_model(run)
        if not store.load_weights(run, model, epoch):
            raise FileNotFoundError(f"weights of {run.key[:12]} are not cached")
        return model.to(device)
    teacher = weights(job.run.teacher, job.run.arm.teacher_epoch) if job.run.teacher else None
    init = weights(job.run.init_from).state_dict() if job.run.init_from else None
    with tempfile.TemporaryDirectory() as scratch:
        result, _ = train(job.run, device, teacher, resume_path=Path(scratch) / "state.pt", init=init)
    return json.loads(json.dumps(result))  # as it would be stored: JSON floats


def compare(job, stored: dict, fresh: dict, arm_values: list[float], integer: bool) -> dict:
    """One run: bitwise or not, stored against fresh metric, and the two-sided p of their difference
    against the arm's seed-to-seed spread."""
    a, b = _value(stored, job.metric), _value(fresh, job.metric)
    values = [v for v in arm_values if math.isfinite(v)]
    var = (statistics.variance(values) if len(values) > 1 else math.nan) + (1 / 12 if integer else 0.0)
    t = (b - a) / math.sqrt(2 * var) if var > 0 else math.nan
    p = 2 * sps.t.sf(abs(t), len(values) - 1) if len(values) > 1 and math.isfinite(t) else math.nan
    if b == a:
        p = 1.0
    return {"run": f"{job.claim}/{job.variant}/{job.arm} seed {job.run.seed}", "key": job.run.key[:12],
            "metric": job.metric, "stored": a, "fresh": b, "bitwise": fresh["epochs"] == stored["epochs"],
            "stored_on": stored["device"], "here": fresh["device"], "arm_seeds": len(values),
            "arm_sd": math.sqrt(var) if var > 0 else math.nan, "t": t, "p": p}


def verify(claims: dict, profile: str, store: Store, n: int, device: torch.device, log=print) -> dict:
    """Retrain n stored runs here (the cheapest retrainable ones) and compare; see the module docstring."""
    runs = choose(stored_runs(claims, profile, store), n, store)
    if not runs:
        raise ValueError(f"no stored {profile} runs of these claims can be retrained here (none stored, or only "
                         "students of teachers whose weights are not cached)")
    rows = []
    for i, (job, stored, arm_values) in enumerate(runs, 1):
        log(f"[{i}/{len(runs)}] retraining {job.claim}/{job.variant}/{job.arm} seed {job.run.seed} "
            f"({job.run.arm.epochs} epochs; stored in {stored['wall_s']:.0f}s on {stored['device']})")
        fresh = retrain(job, store, device)
        integer = isinstance(stored["final"].get(job.metric.split(":")[-1]), int)
        rows.append(compare(job, stored, fresh, arm_values, integer))
        r = rows[-1]
        log(f"    {'bitwise equal' if r['bitwise'] else 'not bitwise equal'}: {r['metric']} stored {r['stored']:.6g}, "
            f"here {r['fresh']:.6g} (arm sd {r['arm_sd']:.3g} over {r['arm_seeds']} seeds, p {r['p']:.3g})")
    ps = [r["p"] for r in rows if math.isfinite(r["p"])]
    p_all = min(1.0, len(ps) * min(ps)) if ps else math.nan
    return {"profile": profile, "here": describe_device(device), "torch": torch.__version__, "runs": rows,
            "bitwise": sum(r["bitwise"] for r in rows), "p_consistent": p_all,
            "consistent": None if math.isnan(p_all) else bool(p_all >= 0.05)}
