"""Execute a plan here, in this process: skip what is stored, train what is missing, save each run atomically.

An interrupted `repro run` loses only the run in progress. A run whose data is missing marks its
claim as not runnable and the rest of the plan goes on.
"""
from __future__ import annotations

import contextlib
import math
import datetime
import os
import platform
import subprocess
import sys
import time

import torch
from tqdm import tqdm

from .cost import span, unconverged
from .data import DataMissing
from .metrics import run_value
from .models import WeightsMissing
from .plan import Job
from .preflight import arm_problem, uses_plugin
from .spec import RunSpec, clip, public_path
from .stacked import train_stacked, why_not_stackable
from .store import RESULT_FIELDS, CorruptResult, Store
from .teachers import Teachers, kept_epochs
from .nets import build_model
from .train import train


def provenance() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import torchvision
    return {"git_commit": commit, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "command": " ".join(["repro"] + [public_arg(a) for a in sys.argv[1:]])}


def public_arg(arg: str) -> str:
    """A command-line argument as a result's provenance keeps it: an absolute path (--out /home/me/x, or
    --out=/home/me/x) as spec.public_path shows it, so no local path reaches a committed file or a report."""
    flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    return flag + eq + public_path(value, 2) if os.path.isabs(value) else arg


PROGRESS_EVERY_S = 10.0  # without a TTY (logs, CI), a progress line at most this often


class LocalExecutor:
    def __init__(self, store: Store, device: torch.device, force: bool = False, log=None, stack_seeds: bool = False):
        self.store, self.device, self.force, self.stack_seeds = store, device, force, stack_seeds
        self.log = log or (lambda msg: print(msg, flush=True))
        self.keep_epochs: dict[str, set[int]] = {}  # run key -> epochs whose weights a student asks for
        self.teachers = Teachers(self.trained_model)  # a student's teacher, and its logits once for all its students
        self._said_stored: set = set()  # result files already reported as stored (a fixed_seed run: every seed)
        self._said_put_off: set = set()  # run keys already reported as held elsewhere (repro.run._put_off)
        self.retrained: dict[str, dict] = {}  # run key -> the record of the retrain its loaded weights came from
        # --force redoes results stored before this moment; one stored since (by this process, or by another
        # `repro run --force` that took the run's lock first) is not trained twice
        self.started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    def trained_model(self, run: RunSpec, epoch: int | None = None) -> torch.nn.Module:
        """The run's final weights (or those at the end of `epoch`) from the cache; retrained if the cache lacks
        them (the same numbers on the same hardware and library versions: _record_retrain says which). Under the
        run's lock: of two processes that need the same missing teacher, one retrains it, the other waits and
        loads its weights (they shared one resume file and both paid the hours)."""
        model = build_model(run)
        if not self.store.load_weights(run, model, epoch):
            with self.store.lock(run.key):
                if not self.store.load_weights(run, model, epoch):  # saved meanwhile by the process we waited for?
                    model = self._retrain(run, epoch)
        if (record := self.store.retrain_record(run)) is not None:  # retrained here, or by an earlier process
            self.retrained[run.key] = record  # its students say so
        return model.to(self.device)

    def _retrain(self, run: RunSpec, epoch: int | None) -> torch.nn.Module:
        what = "weights" if epoch is None else f"epoch-{epoch} weights"
        self.log(f"  {what} of {run.key[:12]} not cached: retraining it (same seed)")
        if epoch is not None:
            self.keep_epochs.setdefault(run.key, set()).add(epoch)
        stored = self.store.done(run.key)
        if stored is not None:  # recorded before the retrain: weights saved before the comparison (a kill between,
            self._record_retrain(run, stored)  # or epoch weights of an unfinished retrain) are a retrain's too
        result, model = self._train(run, f"{run.key[:12]} seed {run.seed} (retrained for its weights)",
                                    f"{run.key[:12]} seed {run.seed}")  # hours for a paper teacher: progress shown
        self.store.state_path(run).unlink(missing_ok=True)  # the weights are saved: nothing left to resume
        if stored is not None:
            self._record_retrain(run, stored, result)
        if epoch is not None:
            self.store.load_weights(run, model, epoch)
        return model

    def _record_retrain(self, run: RunSpec, stored: dict, result: dict | None = None) -> None:
        """"Same seed, same numbers" holds on the same hardware, threads and library versions; a teacher retrained
        on another machine kind gives numbers from the same distribution instead. Which one happened is kept beside
        the retrained weights (`result` None: not known yet), so every student that learns from them, in this
        process or a later one, says so in its provenance (teacher_retrained) and none silently rests on weights
        other than those whose result the store holds."""
        record = {"key": run.key[:12], "stored": stored["final"], "stored_on": stored.get("device"),
                  "bitwise_equal": None, "retrained": None, "retrained_on": None, "retrained_wall_s": None}
        if result is not None:  # its hours are no run's wall_s: the report's compute line adds them from here
            final = result["final"]
            record.update(bitwise_equal=stored["final"] == final, retrained=final, retrained_on=result.get("device"),
                          retrained_wall_s=result.get("wall_s"))
        self.store.save_retrain_record(run, record)
        if result is not None and not record["bitwise_equal"]:
            first = ("test_errors", "test_acc", "test_loss")  # the numbers a reader compares first
            differ = sorted((k for k in stored["final"] if stored["final"][k] != final.get(k)),
                            key=lambda k: (first.index(k) if k in first else len(first), k))
            shown = "; ".join(f"{k} {stored['final'][k]} stored, {final.get(k)} now" for k in differ[:2])
            self.log(f"  note: the retrained {run.key[:12]} differs from its stored result ({shown}): other hardware"
                     " or library versions; its students say so in their provenance (teacher_retrained)")

    def _train(self, run: RunSpec, name: str, short: str):
        """Train (or resume) a run, with its progress shown as `name` (`short` on a TTY's bar), and save its weights.
        What it learns from is fetched first, so a teacher retrained for its weights shows its own progress and its
        hours are not counted as this run's. Its resume file stays until the caller has stored what it needs (the
        result), so no moment of a kill loses a finished run."""
        teacher = self.teachers.network(run)
        init = self.trained_model(run.init_from).state_dict() if run.init_from else None
        keep = self.keep_epochs.get(run.key, set())

        def on_weights(epoch, model):  # a student distils from this run's weights at `epoch`
            if epoch in keep:
                self.store.save_weights(run, model, epoch)

        # Per-epoch state lets a killed run resume where it stopped, with the same numbers.
        state = self.store.state_path(run)
        with self._progress(name, short, run.arm.epochs) as on_epoch:
            result, model = train(run, self.device, teacher, on_epoch, resume_path=state, init=init,
                                  on_weights=on_weights if keep else None, teacher_memo=self.teachers.memo)
        self.store.save_weights(run, model)
        return result, model

    def _fresh(self, result: dict | None) -> bool:
        """A stored result that counts as done: any, or with --force one stored since this executor started."""
        if result is None:
            return False
        created = result["provenance"].get("created")
        return not self.force or (isinstance(created, str) and created >= self.started)

    def _stored(self, job: Job) -> bool:
        try:
            return self._fresh(self.store.find(job.path, job.run.key))
        except CorruptResult as err:
            self.log(f"  {err}: re-running it")
            return False

    def submit(self, jobs: list[Job]) -> dict:
        """Run every job not yet stored; returns counts and the (claim, variant)s that could not run, with why."""
        counts = {"trained": 0, "cached": 0, "failed": 0}
        for key, epoch in kept_epochs(job.run for job in jobs):  # teachers keep the epochs their students distil from
            self.keep_epochs.setdefault(key, set()).add(epoch)
        not_runnable = self._broken_plugins(jobs)
        stacked: set[str] = set()  # run keys trained as part of a stacked group
        tried: set[tuple[str, str, str]] = set()  # (claim, variant, arm)s already offered for stacking
        # Two `repro run`s on one store share the work: a run another process is training (and every run
        # that learns from it) is put off to later rounds, which find it stored once the other is done.
        later: list[Job] = []
        bar = tqdm(jobs, desc="plan", unit="run", disable=not sys.stderr.isatty())
        for job in bar:
            bar.set_postfix_str(f"{job.claim}/{job.variant}/{job.arm}/seed{job.run.seed}")
            arm = (job.claim, job.variant, job.arm)
            if self.stack_seeds and arm not in tried and (job.claim, job.variant) not in not_runnable:
                tried.add(arm)
                stacked |= self._run_stacked([j for j in jobs if (j.claim, j.variant, j.arm) == arm])
            self._submit_one(job, counts, not_runnable, stacked, later)
        # The put-off runs, in rounds: each round takes every one no other process holds, and a round that takes
        # none waits for the first. (One pass that waited for each in turn left a core idle: two processes that
        # both put off a teacher then queued behind each other's students one run at a time.)
        while later:
            waiting: list[Job] = []
            for job in later:
                self._submit_one(job, counts, not_runnable, stacked, waiting)
            if len(waiting) == len(later):
                self._submit_one(waiting.pop(0), counts, not_runnable, stacked)
            later = waiting
        return {"counts": counts, "not_runnable": not_runnable}

    def _broken_plugins(self, jobs: list[Job]) -> dict[tuple[str, str], str]:
        """(claim, variant) -> why, for those whose plugin builders (or their teachers') break their contract on
        a dummy batch (repro/preflight.py): they are NOT RUN, every other claim trains."""
        broken, checked = {}, {}
        for job in jobs:
            for run in (job.run, job.run.teacher, job.run.init_from):
                if run is None or (job.claim, job.variant) in broken:
                    continue
                key = run.arm.model_dump_json()
                if key not in checked:
                    checked[key] = arm_problem(run.arm)
                if checked[key]:
                    broken[(job.claim, job.variant)] = checked[key]
                    self.log(f"NOT RUN {job.claim} [{job.variant}]: {checked[key]}")
        return broken

    def _submit_one(self, job: Job, counts: dict, not_runnable: dict, stacked: set[str],
                    later: list[Job] | None = None) -> None:
        """Skip, copy or train one job. With `later`, a job whose run (or a run it learns from) another
        process holds goes there instead of waiting."""
        if (job.claim, job.variant) in not_runnable:
            return
        if self._stored(job):
            if job.run.key not in stacked and job.path not in self._said_stored:  # one file shared by seeds: once
                self._said_stored.add(job.path)
                self.log(f"  stored, skipped: {job.claim}/{job.variant}/{job.arm} seed {job.run.seed} ({job.path})")
            counts["trained" if job.run.key in stacked else "cached"] += 1
            return
        needs = {r.key for r in (job.run.teacher, job.run.init_from, *job.run.teachers) if r is not None}
        if later is not None and needs & {j.run.key for j in later}:
            later.append(job)
            return
        if later is not None and (busy := sorted(key[:12] for key in needs if self.store.busy(key))):
            # a stored teacher whose weights another process is retraining: its student would wait for hours
            self._put_off(job, later, f"  another process is (re)training {', '.join(busy)}, which {job.claim}/"
                          f"{job.variant}/{job.arm} seed {job.run.seed} learns from: coming back to it after the rest")
            return
        with self.store.lock(job.run.key, wait=later is None) as held:
            if not held:
                self._put_off(job, later, f"  another process is training {job.claim}/{job.variant}/{job.arm} seed "
                                          f"{job.run.seed}: coming back to it after the rest")
                return
            if self._stored(job):
                counts["cached"] += 1
                return
            done = self.store.done(job.run.key)
            if self._fresh(done):  # the same run finished for another claim or variant (a shared teacher)
                self.log(f"  stored for another claim, copied: {job.claim}/{job.variant}/{job.arm} "
                         f"seed {job.run.seed}")
                self.store.save(job.path, job.run, {k: done[k] for k in RESULT_FIELDS}, done["provenance"])
                counts["cached"] += 1
                return
            try:
                result = self._run_one(job)
            except (DataMissing, WeightsMissing) as err:
                not_runnable[(job.claim, job.variant)] = str(err)
                self.log(f"NOT RUN {job.claim} [{job.variant}]: {err}")
                counts["failed"] += 1
                return
            except (Exception, SystemExit) as err:  # noqa: BLE001 -- only where the user's plugin code ran
                if not uses_plugin(job.run):
                    raise
                why = f"a plugin of this arm failed while training: {type(err).__name__}: {clip(str(err), 160)}"
                not_runnable[(job.claim, job.variant)] = why
                self.log(f"NOT RUN {job.claim} [{job.variant}]: {why}")
                counts["failed"] += 1
                return
            self._keep(job, result)
            self.store.state_path(job.run).unlink(missing_ok=True)  # only now: the result is durable
        counts["trained"] += 1

    def _put_off(self, job: Job, later: list[Job], why: str) -> None:
        """To a later round; why is said once (a run shared by claims, or put off again, is not said again)."""
        later.append(job)
        if job.run.key not in self._said_put_off:
            self._said_put_off.add(job.run.key)
            self.log(why)

    def _keep(self, job: Job, result: dict) -> None:
        extra = {}
        sources = [job.run.teacher, job.run.init_from, *job.run.teachers]
        retrained = [self.retrained[r.key] for r in sources if r is not None and r.key in self.retrained]
        if retrained:
            extra["teacher_retrained"] = retrained
        self.store.save(job.path, job.run, result, {**provenance(), **self.store.stamp(job.path), **extra})
        self.store.mark_done(job.run.key, job.path)

    def _run_stacked(self, group: list[Job]) -> set[str]:
        """Train an arm's pending seeds as one stacked model (stacked.py) when they allow it; their
        run keys, or nothing (then they train one by one, which also reports missing data)."""
        group = [j for j in group if not self._stored(j) and not self._fresh(self.store.done(j.run.key))]
        runs = [j.run for j in group]
        if any(r.key in self.keep_epochs for r in runs):  # a student wants weights of an epoch: one by one
            return set()
        try:
            if not runs or why_not_stackable(runs):
                return set()
        except (DataMissing, WeightsMissing):
            return set()
        started = time.perf_counter()
        with contextlib.ExitStack() as locks:
            for run in sorted(runs, key=lambda r: r.key):
                locks.enter_context(self.store.lock(run.key))  # waits: a stacked group trains all or none
            teachers = [self.teachers.network(r) for r in runs] if runs[0].teacher else None
            states = [self.store.state_path(r) for r in runs]
            results = train_stacked(runs, self.device, teachers, states)
            for job, state, (result, model) in zip(group, states, results):
                self.store.save_weights(job.run, model)
                self._keep(job, result)
                state.unlink(missing_ok=True)  # after the result is durable
        first = group[0]
        self.log(f"{first.claim}/{first.variant}/{first.arm} seeds {[r.seed for r in runs]}, stacked: {first.metric} "
                 f"{[metric_text(r, first.metric) for r, _ in results]}, {time.perf_counter() - started:.0f}s")
        return {r.key for r in runs}

    def _run_one(self, job: Job) -> dict:
        name = f"{job.claim}/{job.variant}/{job.arm} seed {job.run.seed}"
        result, _ = self._train(job.run, name, f"{job.arm} seed {job.run.seed}")
        self.log(f"{name}: {result['status']}, {job.metric} {metric_text(result, job.metric)}, "
                 f"{result['wall_s']:.0f}s")
        why = unconverged(result)  # repro/cost.py's rule; the verdict says it again
        if why:
            self.log(f"warning: {name} looks unconverged: {why}")
        return result

    @contextlib.contextmanager
    def _progress(self, name: str, short: str, epochs: int):
        """The on_epoch callback that shows a run's progress: a bar on a TTY; without one (logs, CI) a line per
        epoch, at most every PROGRESS_EVERY_S seconds, so an hours-long run in a log file is never silent."""
        started, tty = time.perf_counter(), sys.stderr.isatty()
        bar = tqdm(total=epochs, desc=f"  {short}", unit="ep", leave=False, disable=not tty)
        if not tty:
            self.log(f"training {name}: {epochs} epochs")
        last, first = [started], []

        def on_epoch(m):
            bar.update(1)
            bar.set_postfix(loss=f"{m['train_loss']:.4f}", test_acc=f"{m.get('test_acc', math.nan):.4f}")
            now = time.perf_counter()
            if not first:  # a resumed run's first epoch here is past epoch 1
                first.append(m["epoch"])
            if not tty and (now - last[0] >= PROGRESS_EVERY_S or m["epoch"] in (1, epochs)):
                last[0] = now
                # the rate of the epochs trained by this process, not of the state it resumed from
                left = (now - started) / (m["epoch"] - first[0] + 1) * (epochs - m["epoch"])
                self.log(f"  {name} epoch {m['epoch']}/{epochs}: train_loss {m['train_loss']:.4f}, "
                         f"test_acc {m.get('test_acc', math.nan):.4f}, {now - started:.0f}s"
                         + (f", about {span(left)} left" if m["epoch"] < epochs else ""))
        try:
            yield on_epoch
        finally:
            bar.close()


def metric_text(result: dict, metric: str) -> str:
    """The claim's metric for one finished run, as `repro run` prints it (a teacher may lack it: '-')."""
    try:
        return f"{run_value(result, metric):.6g}"
    except (KeyError, IndexError, TypeError, ValueError):
        return "-"
