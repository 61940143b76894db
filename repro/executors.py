"""Executors: `local` runs a plan in this process; `ray` fans it out over a Ray cluster, one task per run.

Both have `submit(jobs) -> {"counts": {"trained", "cached", "failed"}, "not_runnable": {(claim, variant): why}}`
and write into the same store. A Ray task runs its one job through a LocalExecutor on the worker, so the
lock per run key, the done index, the per-epoch checkpoints and the atomic writes are the same code and
the results are the same files. On a cluster of several machines, the results and cache folders must be
on a filesystem every node sees, and every node needs kd-repro installed at the same commit.
"""
from __future__ import annotations

import sys
from typing import Protocol

import torch

from .plan import Job
from .run import LocalExecutor
from .store import Store

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    def submit(self, jobs: list[Job]) -> dict: ...


def make_executor(name: str, store: Store, device: torch.device, force: bool = False,
                  address: str | None = None, stack_seeds: bool = False) -> Executor:
    if name == "local":
        return LocalExecutor(store, device, force=force, stack_seeds=stack_seeds)
    if stack_seeds:
        raise ValueError("--stack-seeds works with the local executor only (Ray runs one seed per task)")
    if name == "ray":
        return RayExecutor(store, device, force=force, address=address)
    raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")


def _run_on_worker(root: str, cache: str, device: str, force: bool, argv: list[str], registrations: dict,
                   job: Job) -> dict:
    """One job, on a Ray worker, through a LocalExecutor on the same store. The worker loads the job's claim
    first, as `repro run` did: that imports its plugins (their models, datasets and losses) and finds its
    checkpoint teachers."""
    sys.argv = argv  # the result's provenance names the `repro run` command, not Ray's worker process
    if job.spec is not None and job.spec.is_file():  # a claim built in memory (tests) has no file to load
        from .spec import load_claim
        load_claim(job.spec)
    store = Store(root, cache)
    store.registrations = registrations  # its results carry the registration they were trained under
    return LocalExecutor(store, torch.device(device), force=force).submit([job])


class RayExecutor:
    """Runs each job as a Ray task asking for 1 CPU (and 1 GPU when the device is CUDA). A job starts once
    the runs it learns from (teacher, init_from) are finished; jobs sharing a run key run one after another,
    so the first trains and the others are stored from the done index without a Ray task (with `force` too:
    force redoes what was stored before this executor started, never a run twice, as with the local executor)."""

    def __init__(self, store: Store, device: torch.device, force: bool = False, address: str | None = None,
                 log=None):
        import ray  # optional dependency: pip install 'kd-repro[ray]'
        if not ray.is_initialized():
            ray.init(address=address)  # None: start a local cluster on this machine
        self.ray, self.store, self.device, self.force = ray, store, torch.device(device), force
        self.local = LocalExecutor(store, self.device, force=force, log=log)
        gpus = 1 if self.device.type == "cuda" else 0
        self.task = ray.remote(num_cpus=1, num_gpus=gpus)(_run_on_worker)
        self.args = (str(store.root.resolve()), str(store.cache.resolve()), str(self.device), force, list(sys.argv),
                     dict(store.registrations))

    def submit(self, jobs: list[Job]) -> dict:
        summary = {"counts": {"trained": 0, "cached": 0, "failed": 0}, "not_runnable": {}}
        todo, running = list(jobs), {}  # running: Ray object ref -> job
        try:
            while todo or running:
                waiting = {job.run.key for job in todo}
                busy = {job.run.key for job in running.values()}  # grows: later jobs wait behind these keys
                for job in list(todo):
                    if (job.claim, job.variant) in summary["not_runnable"]:
                        todo.remove(job)
                        continue
                    needs = {r.key for r in (job.run.teacher, job.run.init_from, *job.run.teachers) if r}
                    if job.run.key in busy or needs & (busy | waiting):
                        busy.add(job.run.key)
                        continue
                    todo.remove(job)
                    busy.add(job.run.key)
                    if self.local._fresh(self.store.done(job.run.key)):  # with force: stored since we started
                        _merge(summary, self.local.submit([job]))  # already trained: stored here, no training
                    else:
                        running[self.task.remote(*self.args, job)] = job
                if running:
                    [ref], _ = self.ray.wait(list(running), num_returns=1)
                    del running[ref]
                    _merge(summary, self.ray.get(ref))
        except BaseException:  # Ctrl-C, SIGTERM or a failed task: stop the others; each keeps its last epoch
            for ref in running:
                self.ray.cancel(ref)
            raise
        return summary


def _merge(summary: dict, part: dict) -> None:
    for name, n in part["counts"].items():
        summary["counts"][name] += n
    summary["not_runnable"].update(part["not_runnable"])
