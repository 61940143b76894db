"""Claims x variants x seeds -> an ordered list of jobs (teachers before their students)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .precision import apply_override
from .spec import Claim, RunSpec


@dataclass(frozen=True)
class Job:
    profile: str
    claim: str
    variant: str
    arm: str
    run: RunSpec
    path: Path  # where its result is stored
    metric: str = "test_errors"  # the claim's check metric, which `repro run` prints per finished run


def plan_claim(claim: Claim, variant: str, profile: str, seeds: list[int] | None = None,
               arms: list[str] | None = None) -> dict[str, list[RunSpec]]:
    """Arm name -> one RunSpec per seed (the profile's, or `seeds`). A student's teacher is the teacher arm's
    RunSpec for the same seed, or its single run when the teacher arm has a `fixed_seed`. `arms`: only
    these arms and what they learn from (a sequential look adds seeds to the check's arms alone)."""
    specs: dict[str, list[RunSpec]] = {}
    needed = needed_arms(claim, variant, profile, arms)
    if not needed:  # only observed arms: nothing to train (and perhaps no profile)
        return specs
    seeds = claim.profiles[profile].seeds if seeds is None else seeds
    for name in [a for a in claim.teacher_order() if a in needed]:
        arm = apply_override(claim.resolve(name, variant, profile))  # REPRO_PRECISION, for run and verdict alike
        specs[name] = [RunSpec(arm=arm, seed=seed if arm.fixed_seed is None else arm.fixed_seed,
                               teacher=specs[arm.teacher][i] if arm.teacher else None,
                               init_from=specs[arm.init_from][i] if arm.init_from else None)
                       for i, seed in enumerate(seeds)]
    return specs


def needed_arms(claim: Claim, variant: str, profile: str, roots: list[str] | None = None) -> set[str]:
    """The arms the check and preconditions compare (or `roots`), and the arms they learn from; a shared
    base file may define arms a claim never looks at, and those are not trained for it. Observed arms
    (values measured elsewhere) are never trained."""
    todo = list(roots) if roots is not None else [a for c in [claim.check, *claim.preconditions] for a in c.arms]
    needed: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in needed and not claim.is_observed(name):
            needed.add(name)
            arm = claim.resolve(name, variant, profile)
            todo += [a for a in (arm.teacher, arm.init_from) if a]
    return needed


def resolve_profile(profile: str) -> str:
    """'auto' is the source's protocol on a GPU and the reduced one on a CPU."""
    if profile == "auto":
        return "paper" if torch.cuda.is_available() else "quick"
    return profile


def variant_jobs(claim: Claim, variant: str, profile: str, store, seeds: list[int] | None = None,
                 arms: list[str] | None = None) -> list[Job]:
    """The jobs of one claim variant (plan_claim's runs with where each is stored)."""
    return [Job(profile, claim.id, variant, arm, run, store.path(profile, claim.id, variant, arm, run), claim.check.metric)
            for arm, runs in plan_claim(claim, variant, profile, seeds, arms).items() for run in runs]


def plan(claims: list[Claim], profile: str, store, arms: list[str] | None = None) -> list[Job]:
    """Every run of the claims at this profile; with `arms`, only those of these arms that a claim variant
    needs, and what they learn from (`repro run --arms`: one process trains the baselines while another
    trains the teacher)."""
    jobs = []
    for claim in [c for c in claims if profile in c.profiles]:
        for variant in claim.variants:
            roots = None if arms is None else [a for a in arms if a in needed_arms(claim, variant, profile)]
            if roots != []:
                jobs += variant_jobs(claim, variant, profile, store, arms=roots)
    return jobs
