"""`repro verify`: retrain a sample of stored runs here and say what the shipped evidence is worth, as a check
that a store edited after training cannot pass by construction.

What it proves, and how (for the runs it retrains: a sample drawn afresh each time, printed so that `--draw`
replays it, because a sample a forger can predict checks only the runs the forger left alone):
1. Every file under the profile's folders of the chosen claims is read and checked (store.Store.load: checksum,
   schema, integrity, name against contents), and filed against the run the claims plan at that path. A file it
   cannot use (truncated, edited without its checksum, a symlink, unreadable, another run's result under this
   run's name or folder) is named, never dropped in silence: exit UNUSABLE.
2. A sampled run whose stored hardware, thread count and library versions (its `device` and `provenance`) are
   this machine's must come out bit-for-bit equal (a run is a function of its spec and seed there): anything
   else is FAILED, with the differing numbers, stored against retrained, per metric.
3. The sampled runs stored elsewhere are tested together. d_i = retrained - stored of the claim's metric. Under
   "the stored value is an honest draw", d_i has mean 0 and a variance of at most 2 s_a^2 (s_a the seed-to-seed
   sd of its arm; plus the rounding variance 1/12 of a count). s_a is estimated from the arm's stored seeds that
   were NOT retrained (never from the values under test, so a forged value cannot widen its own yardstick; a
   constant shift of the whole store leaves that spread as it was). Two statistics, Bonferroni over them:
   - shift: sum d_i over the runs of one metric, against its Welch-Satterthwaite t (a shift in one direction
     accumulates over the sample; one such test per metric);
   - largest: max |d_i| / sqrt(2 s_a^2), each against Student's t on its arm's degrees of freedom, times the
     number of runs (a single run far off, or shifts in opposite directions that cancel in the sum).
   A run whose arm has fewer than 2 stored seeds besides those retrained has no yardstick, and a run that diverged
   on one side only has no number to compare: "cannot decide" (UNDECIDABLE), never "consistent". Diverged runs
   are drawn like finished ones (a run forged as diverged says its claim failed).
Fresh runs go to a scratch folder; nothing stored is touched.
"""
from __future__ import annotations

import json
import math
import os
import platform
import random
import secrets
import statistics
import tempfile
from pathlib import Path

import torch
from scipy import stats as sps

from .metrics import run_value
from .designs import RECORD as DESIGN_RECORD
from .nets import build_model
from .plan import plan_claim, variant_jobs
from .spec import clip
from .store import CorruptResult, OutsideStore, Store
from .teachers import teacher_network
from .train import describe_device, train

ALPHA = 0.05
# Exit statuses, the first that applies (documented in `repro verify --help` and README.md).
VERIFIED, FAILED, ERROR, UNUSABLE, UNDECIDABLE = 0, 1, 2, 3, 4
EXIT_NAMES = {VERIFIED: "VERIFIED", FAILED: "FAILED", UNUSABLE: "UNUSABLE FILES", UNDECIDABLE: "CANNOT DECIDE"}
ENV_KEYS = ("device", "torch", "torchvision", "python")  # what makes a run bit-for-bit repeatable


def environment(device: torch.device) -> dict:
    """This machine as a result records it: `device` (hardware and threads) and the library versions."""
    import torchvision
    return {"device": describe_device(device), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}


def stored_environment(result: dict) -> dict:
    return {"device": result["device"], **{k: result["provenance"].get(k) for k in ENV_KEYS[1:]}}


def scan(claims: dict, profile: str, store: Store) -> tuple[list[tuple], list[tuple[str, str]], int]:
    """(job, stored result, the arm's stored (key, value) pairs) per distinct run key; every file under the
    profile's claim folders that cannot be used, as (path, why); and how many planned runs are not stored."""
    planned: dict[Path, object] = {}  # where a run of the plan is filed -> its job
    groups: list[list] = []
    unusable: list[tuple[str, str]] = []
    for claim in claims.values():
        if profile not in claim.profiles:
            continue
        prof = claim.profiles[profile]
        seeds = prof.seeds_for(prof.sequential.max_seeds) if prof.sequential else prof.seeds  # every look's seeds
        for variant in claim.variants:
            try:
                jobs = variant_jobs(claim, variant, profile, store, seeds)
                for precision in (None, "fp32"):  # its declared runs and its fp32 twin's are both its own
                    for arm, rs in plan_claim(claim, variant, profile, seeds, precision=precision).items():
                        planned.update({store.path(profile, claim.id, variant, arm, r): r for r in rs})
            except OutsideStore as err:  # a folder of the claim linked out of the store
                unusable.append((str(store.root / profile / claim.id / variant), clip(err, 160)))
                continue
            groups.append(jobs)
            planned.update({Path(j.path): j.run for j in jobs})
    keys = {run.key: p for p, run in planned.items()}
    good: dict[Path, dict] = {}
    for claim in [c for c in claims.values() if profile in c.profiles]:
        for path, why in _files(store.root / profile / claim.id):
            if why is None:
                try:
                    result = Store.load(path)
                except CorruptResult as err:
                    why = err.why
                else:
                    run = planned.get(path)
                    if run is not None and result["key"] == run.key:
                        good[path] = result
                        continue
                    why = (f"holds run {result['key'][:12]} (seed {result['run']['seed']}), whose place is "
                           f"{keys[result['key']]}: a result moved to another run's name or folder"
                           if result["key"] in keys else
                           f"run {result['key'][:12]} is not a run these claims plan at {profile} (an older spec "
                           "or code version, or a file put there)")
            unusable.append((str(path), why))
    seen, out, missing = set(), [], 0
    for jobs in groups:
        found = [(j, good[Path(j.path)]) for j in jobs if Path(j.path) in good]
        missing += sum(Path(j.path) not in good and not Path(j.path).exists() for j in jobs
                       if j.run.seed in claims[j.claim].profiles[profile].seeds)  # a later look's may never be
        for job, result in found:
            if job.run.key in seen:
                continue
            seen.add(job.run.key)
            arm = {j.run.key: _value(r, job.metric) for j, r in found if j.arm == job.arm}  # a fixed_seed run once
            out.append((job, result, list(arm.items())))
    return out, unusable, missing


def _files(folder: Path):
    """(path, None) per file under `folder`, and (path, why) for what is not a plain file or folder: a symlink
    (followed nowhere) or something else. Temporary files of a write in progress (store.atomic_write) are skipped."""
    if folder.is_symlink():
        yield folder, "a symlink, not a folder of the store"
        return
    if not folder.is_dir():
        return
    for here, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs):
            if (Path(here) / name).is_symlink():
                yield Path(here) / name, "a symlink to a folder, not a folder of the store"
        for name in sorted(files):
            path = Path(here) / name
            if (name.startswith(".") and name.endswith(".tmp") or name == DESIGN_RECORD) and not path.is_symlink():
                continue  # a write in progress (store.atomic_write); a variant's registered design (designs.py)
            if path.is_symlink():
                yield path, "a symlink, not a result file"
            elif not path.is_file():
                yield path, "not a regular file"
            else:
                yield path, None


def _value(result: dict, metric: str) -> float:
    try:
        value = run_value(result, metric)
    except (KeyError, IndexError, TypeError, ValueError):
        return math.nan
    return math.nan if value is None else float(value)


def choose(runs: list[tuple], n: int, store: Store, rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """(n runs drawn at random from those that can be retrained from what is here, one of every arm before a
    second of any; the stored runs that cannot be: students of a teacher whose weights are not cached, which
    would retrain the teacher too). The draw is uniform within an arm and over the arms' order: a sample a forger
    can predict (the cheapest of each arm, by the `wall_s` the forger writes) checks only the runs left honest."""
    def teachable(job) -> bool:
        return all(r is None or store.checkpoint_path(r, job.run.arm.teacher_epoch if r is job.run.teacher else None)
                   .exists() for r in (job.run.teacher, job.run.init_from, *job.run.teachers))
    finished = sorted(runs, key=lambda r: r[0].run.key)  # done or diverged: a run marked diverged is drawn too
    usable = [r for r in finished if teachable(r[0])]
    rng.shuffle(usable)
    rank: dict[tuple, int] = {}  # one run of every arm before a second of any: the sample spans the arms
    for job, _, _ in usable:
        rank[job.run.key] = rank.setdefault((job.claim, job.variant, job.arm), 0)
        rank[(job.claim, job.variant, job.arm)] += 1
    return sorted(usable, key=lambda r: rank[r[0].run.key])[:n], [r for r in finished if not teachable(r[0])]


def retrain(job, store: Store, device: torch.device) -> dict:
    """The run trained afresh here (resume state in a scratch folder); teachers are read from the cache."""
    def weights(run, epoch=None):
        model = build_model(run)
        if not store.load_weights(run, model, epoch):
            raise FileNotFoundError(f"weights of {run.key[:12]} are not cached")
        return model.to(device)
    teacher = teacher_network(job.run, weights)  # one, several, or a checkpoint (repro/teachers.py)
    init = weights(job.run.init_from).state_dict() if job.run.init_from else None
    with tempfile.TemporaryDirectory() as scratch:
        result, _ = train(job.run, device, teacher, resume_path=Path(scratch) / "state.pt", init=init)
    return json.loads(json.dumps(result))  # as it would be stored: JSON floats


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or (_num(a) and _num(b) and a == b)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _show(x) -> str:
    return clip(json.dumps(x) if not isinstance(x, float) else f"{x:.10g}", 48)


def differences(stored: dict, fresh: dict) -> list[str]:
    """Every way the retrained result differs from the stored one, one line per metric (stored vs retrained):
    empty means bitwise equal (every per-epoch number, the final metrics and the status)."""
    out = []
    if stored["status"] != fresh["status"]:
        out.append(f"status: stored {stored['status']}, retrained {fresh['status']}")
    se, fe = stored["epochs"], fresh["epochs"]
    if len(se) != len(fe):
        out.append(f"epochs: stored {len(se)}, retrained {len(fe)}")
    for key in sorted({k for e in [*se, *fe, stored["final"], fresh["final"]] for k in e}):
        epochs = [i for i in range(max(len(se), len(fe)))
                  if not _same((se[i] if i < len(se) else {}).get(key), (fe[i] if i < len(fe) else {}).get(key))]
        a, b = stored["final"].get(key), fresh["final"].get(key)
        if not epochs and _same(a, b):
            continue
        line = f"{key}: final stored {_show(a)}, retrained {_show(b)}"
        if epochs:
            i = epochs[0]
            line += (f"; {len(epochs)} of {max(len(se), len(fe))} epochs differ (first, epoch {i + 1}: stored "
                     f"{_show((se[i] if i < len(se) else {}).get(key))}, retrained "
                     f"{_show((fe[i] if i < len(fe) else {}).get(key))})")
        out.append(line)
    return out


def spread(values: list[float], integer: bool) -> tuple[float, int]:
    """(variance of one seed's value, its degrees of freedom) from an arm's stored seeds not under test, with
    the rounding variance of a count; (nan, 0) below 2 values."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return math.nan, 0
    return statistics.variance(values) + (1 / 12 if integer else 0.0), len(values) - 1


def combined_test(rows: list[dict]) -> dict:
    """One test over every decidable run retrained elsewhere (module docstring, 3): the p of the shift in each
    metric and of the largest single difference, Bonferroni over those statistics."""
    rows = [r for r in rows if r["df"] > 0]
    if not rows:
        return {"n": 0, "p": math.nan, "parts": []}
    parts = []
    for metric in sorted({r["metric"] for r in rows}):
        mine = [r for r in rows if r["metric"] == metric]
        arms: dict[str, tuple[float, int, int]] = {}  # arm -> (variance, df, runs of it in the sample)
        for r in mine:
            var, df, m = arms.get(r["arm_id"], (r["var"], r["df"], 0))
            arms[r["arm_id"]] = (var, df, m + 1)
        total = sum(d["d"] for d in mine)
        v = sum(2 * var * m for var, _, m in arms.values())
        # Welch-Satterthwaite degrees of freedom of a sum of estimated variances
        df = v ** 2 / sum((2 * var * m) ** 2 / dfa for var, dfa, m in arms.values()) if v > 0 else 1
        t = total / math.sqrt(v) if v > 0 else (0.0 if total == 0 else math.copysign(math.inf, total))
        parts.append({"what": f"shift of {metric}", "n": len(mine), "mean": total / len(mine),
                      "sd_mean": math.sqrt(v) / len(mine), "t": t, "df": df, "p": float(2 * sps.t.sf(abs(t), df))})
    worst = min(rows, key=lambda r: r["p_one"])
    parts.append({"what": "largest single difference", "n": len(rows), "run": worst["run"], "t": worst["t"],
                  "df": worst["df"], "p": min(1.0, len(rows) * worst["p_one"])})
    return {"n": len(rows), "p": min(1.0, len(parts) * min(p["p"] for p in parts)), "parts": parts}


def verify(claims: dict, profile: str, store: Store, n: int, device: torch.device, log=print,
           draw: int | None = None) -> dict:
    """Scan the store, retrain n stored runs here (drawn at random by `draw`, a fresh draw when None) and decide;
    see the module docstring. Returns the rows, the unusable files, the combined test, `status` (an exit status)
    and `lines`."""
    runs, unusable, missing = scan(claims, profile, store)
    replayed, draw = draw is not None, secrets.randbits(32) if draw is None else draw
    chosen, untrainable = choose(runs, n, store, random.Random(draw))
    if not chosen and not unusable:
        raise ValueError(f"no stored {profile} runs of these claims can be retrained here (none stored, or only "
                         "students of teachers whose weights are not cached)")
    here = environment(device)
    sampled = {job.run.key for job, _, _ in chosen}
    log(f"sample: {len(chosen)} of the {len(runs) - len(untrainable)} stored runs that can be retrained here, drawn "
        f"at random (draw {draw}{', given' if replayed else ''}; `--draw {draw}` replays it)")
    rows = []
    for i, (job, stored, arm_values) in enumerate(chosen, 1):
        log(f"[{i}/{len(chosen)}] retraining {job.claim}/{job.variant}/{job.arm} seed {job.run.seed} "
            f"({job.run.arm.epochs} epochs; stored in {stored['wall_s']:.0f}s on {stored['device']})")
        fresh = retrain(job, store, device)
        then = stored_environment(stored)
        integer = isinstance(stored["final"].get(job.metric.split(":")[-1]), int)
        a, b = _value(stored, job.metric), _value(fresh, job.metric)
        diverged = stored["status"] == fresh["status"] == "diverged"  # both stopped: no number, and none owed
        unmatched = None if diverged or math.isfinite(a) and math.isfinite(b) else (
            f"stored {stored['status']}, retrained {fresh['status']}: no {job.metric} on both sides to compare")
        var, df = (math.nan, 0) if diverged or unmatched else \
            spread([v for k, v in arm_values if k not in sampled], integer)
        t = (b - a) / math.sqrt(2 * var) if df and var > 0 else (0.0 if a == b else math.copysign(math.inf, b - a))
        rows.append({"run": f"{job.claim}/{job.variant}/{job.arm} seed {job.run.seed}", "key": job.run.key[:12],
                     "arm_id": f"{job.claim}/{job.variant}/{job.arm}", "metric": job.metric, "stored": a, "fresh": b,
                     "d": b - a, "same_env": then == here,
                     "env_diff": [f"{k} {then[k]} (here {here[k]})" for k in ENV_KEYS if then[k] != here[k]],
                     "differences": differences(stored, fresh), "var": var, "df": df, "t": t,
                     "p_one": float(2 * sps.t.sf(abs(t), df)) if df else math.nan,
                     "diverged": diverged, "unmatched": unmatched})
        rows[-1]["bitwise"] = not rows[-1]["differences"]
    elsewhere = [r for r in rows if not r["same_env"]]
    test = combined_test(elsewhere)
    out = {"profile": profile, "here": here["device"], "torch": torch.__version__, "runs": rows,
           "unusable": unusable, "missing": missing, "test": test,
           "bitwise": sum(r["bitwise"] for r in rows), "draw": draw, "replayed": replayed,
           "untrainable": len(untrainable),
           "undecided": [r for r in elsewhere if not r["df"] and not r["diverged"]]}
    out["status"] = status(out)
    out["lines"] = summary(out)
    return out


def status(out: dict) -> int:
    """The exit status: the first that applies of FAILED, UNUSABLE, UNDECIDABLE; else VERIFIED."""
    if any(r["same_env"] and not r["bitwise"] for r in out["runs"]) or out["test"]["p"] < ALPHA:
        return FAILED
    if out["unusable"]:
        return UNUSABLE
    if out["undecided"] or not out["runs"]:
        return UNDECIDABLE
    return VERIFIED


def _undecided(out: dict) -> str:
    """Why the runs retrained elsewhere cannot be judged: no yardstick, or no number on one side."""
    unmatched = sum(bool(r["unmatched"]) for r in out["undecided"])
    spreadless = len(out["undecided"]) - unmatched
    return " and ".join(filter(None, [
        (f"{spreadless} of them " if unmatched else "") + "their arms have no spread to judge them by (a store with "
        "too few seeds)" if spreadless else "",
        f"{unmatched} of them finished differently here and as stored (one of the two diverged; named above)"
        if unmatched else ""]))


def summary(out: dict) -> list[str]:
    """What `repro verify` prints: unusable files, each run, the combined test, and the verdict last."""
    lines = [f"UNUSABLE {path}: {why}" for path, why in out["unusable"]]
    for r in out["runs"]:
        head = f"{r['run']} ({r['key']}): {r['metric']} stored {r['stored']:.6g}, retrained {r['fresh']:.6g}"
        if r["same_env"]:
            lines.append(f"{'bitwise equal' if r['bitwise'] else 'FAILED, not bitwise equal'} {head} (same hardware, "
                         "threads and versions as stored)")
            lines += [f"    {d}" for d in r["differences"]] if not r["bitwise"] else []
        else:
            yardstick = ("both diverged" if r["diverged"] else f"cannot decide: {r['unmatched']}" if r["unmatched"]
                         else f"arm sd {math.sqrt(r['var']):.3g} from {r['df'] + 1} stored seeds not retrained"
                         if r["df"] else "cannot decide: fewer than 2 stored seeds of its arm besides those retrained")
            lines.append(f"{'bitwise equal' if r['bitwise'] else 'differs'} {head}; stored elsewhere "
                         f"({'; '.join(r['env_diff'])}); {yardstick}")
    test = out["test"]
    for part in test["parts"]:
        if part["what"].startswith("shift"):
            lines.append(f"{part['what']} over {part['n']} runs retrained elsewhere: mean retrained - stored "
                         f"{part['mean']:+.4g} (sd of the mean {part['sd_mean']:.3g}, t {part['t']:.3g} on "
                         f"{part['df']:.3g} df, two-sided p {part['p']:.3g})")
        else:
            lines.append(f"{part['what']}: {part['run']} (t {part['t']:.3g} on {part['df']} df; Bonferroni over "
                         f"{part['n']} runs, p {part['p']:.3g})")
    if out["untrainable"]:
        lines.append(f"note: {out['untrainable']} stored runs were not in the draw: their teacher's weights are not "
                     "cached here (`repro run` the teacher's claim caches them), so retraining one would retrain its "
                     "teacher too")
    if out["replayed"]:
        lines.append(f"note: draw {out['draw']} was given (--draw), not drawn: a sample chosen by whoever ran it can "
                     "miss the runs a forger edited; run without --draw for a fresh sample")
    if out["missing"]:
        lines.append(f"note: {out['missing']} planned runs of these claims are not stored (not checked)")
    code, n = out["status"], len(out["runs"])
    same = [r for r in out["runs"] if r["same_env"]]
    why = {
        FAILED: "; ".join(filter(None, [
            f"{sum(not r['bitwise'] for r in same)} of {len(same)} runs retrained on the hardware, threads and "
            "versions they were stored with are not bitwise equal" if any(not r["bitwise"] for r in same) else "",
            f"the runs retrained elsewhere are not draws of the stored seeds' distribution (p {test['p']:.3g} < "
            f"{ALPHA})" if test["p"] < ALPHA else ""])),
        UNUSABLE: f"{len(out['unusable'])} stored files could not be used (named above)",
        UNDECIDABLE: f"{len(out['undecided'])} of the {n} runs were retrained elsewhere and {_undecided(out)}"
        if out["undecided"]
        else "no run retrained",
        VERIFIED: f"{len(same)} of {n} runs bitwise equal where stored on this hardware, threads and versions"
                  + (f"; {test['n']} retrained elsewhere consistent with the stored seeds (p {test['p']:.3g})"
                     if test["n"] else ""),
    }[code]
    lines.append(f"verify {out['profile']} on {out['here']} (torch {out['torch']}), {n} runs retrained: "
                 f"{EXIT_NAMES[code]}: {why}")
    return lines
