"""Claims x variants x seeds -> an ordered list of jobs (teachers before their students)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .plugins import code_hashes
from .registry import builders_of
from .precision import apply_override, is_slow, override
from .spec import Claim, RunSpec
from .store import OutsideStore


@dataclass(frozen=True)
class Job:
    profile: str
    claim: str
    variant: str
    arm: str
    run: RunSpec
    path: Path  # where its result is stored
    metric: str = "test_errors"  # the claim's check metric, which `repro run` prints per finished run
    twin: bool = False  # trained as its variant's fp32 twin (twin_precision), not at its declared bf16
    spec: Path | None = None  # the claim's spec file: another process (a Ray worker) loads it for plugins, checkpoints


def plan_claim(claim: Claim, variant: str, profile: str, seeds: list[int] | None = None,
               arms: list[str] | None = None, precision: str | None = None) -> dict[str, list[RunSpec]]:
    """Arm name -> one RunSpec per seed (the profile's, or `seeds`). A student's teacher is the teacher arm's
    RunSpec for the same seed, or its single run when the teacher arm has a `fixed_seed`. `arms`: only
    these arms and what they learn from (a sequential look adds seeds to the check's arms alone).
    `precision`: every arm at this precision (the variant's twin), unless REPRO_PRECISION sets another."""
    specs: dict[str, list[RunSpec]] = {}
    needed = needed_arms(claim, variant, profile, arms)
    if not needed:  # only observed arms: nothing to train (and perhaps no profile)
        return specs
    seeds = claim.profiles[profile].seeds if seeds is None else seeds
    for name in [a for a in claim.teacher_order() if a in needed]:
        arm = apply_override(claim.resolve(name, variant, profile), precision)  # for run and verdict alike
        code = code_hashes(builders_of(arm).values())  # its plugin files ({} for built-ins: keys as before)
        specs[name] = [RunSpec(arm=arm, seed=seed if arm.fixed_seed is None else arm.fixed_seed,
                               teacher=specs[arm.teacher][i] if arm.teacher else None,
                               init_from=specs[arm.init_from][i] if arm.init_from else None,
                               teachers=[specs[t][i] for t in arm.teachers or ()], code=code)
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
            todo += [a for a in (*arm.teacher_names, arm.init_from) if a]
    return needed


def twin_precision(claim: Claim, variant: str, profile: str, store, device=None) -> str | None:
    """'fp32' where a variant that declares bf16 is judged, or trained, as its fp32 twin (every arm in fp32,
    its teachers included: other run keys, never mixed with its bf16 runs); None: as declared.

    Judging (no device) looks only at what is stored, so a verdict is the same on every machine: the declared
    runs when every run of the profile's seeds is stored, else the twin's when all of those are. Training
    (a device) adds the machine: a variant whose declared runs are not all stored trains its twin where bf16
    is slow (a CPU without native bf16, where a bf16 run takes 10-13x fp32's time), and as declared elsewhere.
    REPRO_PRECISION (`--precision`) sets every arm itself, and then there is no twin."""
    if override() is not None or profile not in claim.profiles:
        return None
    declared = plan_claim(claim, variant, profile)
    if not any(r.arm.precision == "bf16" for runs in declared.values() for r in runs) or \
            _all_stored(declared, claim, variant, profile, store):
        return None
    if _all_stored(plan_claim(claim, variant, profile, precision="fp32"), claim, variant, profile, store):
        return "fp32"
    return "fp32" if device is not None and is_slow(device) else None


def _all_stored(runs: dict[str, list[RunSpec]], claim: Claim, variant: str, profile: str, store) -> bool:
    try:
        return all(store.path(profile, claim.id, variant, arm, r).exists() for arm, rs in runs.items() for r in rs)
    except OutsideStore:  # a folder linked out of the store holds none of its runs (collect and plan say so)
        return False


def resolve_profile(profile: str) -> str:
    """'auto' is the source's protocol on a GPU and the reduced one on a CPU."""
    if profile == "auto":
        return "paper" if torch.cuda.is_available() else "quick"
    return profile


def variant_jobs(claim: Claim, variant: str, profile: str, store, seeds: list[int] | None = None,
                 arms: list[str] | None = None, device=None) -> list[Job]:
    """The jobs of one claim variant (plan_claim's runs with where each is stored), at its declared precision
    or as its fp32 twin (twin_precision: `device` is the machine that would train them; None: what is stored)."""
    twin = twin_precision(claim, variant, profile, store, device)
    return [Job(profile, claim.id, variant, arm, run, store.path(profile, claim.id, variant, arm, run),
                claim.check.metric, twin is not None, claim.spec_path)
            for arm, runs in plan_claim(claim, variant, profile, seeds, arms, twin).items() for run in runs]


def plan(claims: list[Claim], profile: str, store, arms: list[str] | None = None, device=None) -> list[Job]:
    """Every run of the claims at this profile; with `arms`, only those of these arms that a claim variant
    needs, and what they learn from (`repro run --arms`: one process trains the baselines while another
    trains the teacher). `device`: the machine that trains them, for twin_precision."""
    jobs = []
    for claim in [c for c in claims if profile in c.profiles]:
        for variant in claim.variants:
            roots = None if arms is None else [a for a in arms if a in needed_arms(claim, variant, profile)]
            if roots != []:
                jobs += variant_jobs(claim, variant, profile, store, arms=roots, device=device)
    return jobs


class NothingToRun(ValueError):
    """A `repro run` choice that leaves nothing to train: its message is the error line (after 'error: ')."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def choose(claims: dict[str, Claim], profile: str, variants: list[str] | None = None, seeds: int | None = None,
           arms: list[str] | None = None, sequential: bool = False, note=_stderr) -> dict[str, Claim]:
    """The claims as `repro run` trains them at `profile`: only `variants`, the profile's first `seeds` seeds,
    and `arms` checked against the arms they train; with `sequential` (--until-decided) one of them must declare
    `sequential:`. `note(line)` tells of each claim left with nothing to run; NothingToRun where nothing is."""
    lacking = {k: c for k, c in claims.items() if profile not in c.profiles}
    for k, c in lacking.items():
        if not c.profiles:  # every arm observed (values measured elsewhere): `repro judge` decides it
            note(f"note: {k} has only observed arms: nothing to train (`repro judge {k}` decides it)")
            continue
        note(f"warning: {k} has no '{profile}' profile (it has {', '.join(c.profiles)}); nothing to run for it")
    if lacking and len(lacking) == len(claims):
        raise NothingToRun(f"no chosen claim has a '{profile}' profile: 0 runs to plan")
    if sequential and not any(c.profiles.get(profile) and c.profiles[profile].sequential for c in claims.values()):
        raise NothingToRun(f"--until-decided: no chosen claim declares `sequential:` in its '{profile}' profile; "
                           "nothing to add seeds to (run without --until-decided)")
    if variants:  # e.g. copy one variant's shared runs without training another variant's own
        chosen, known = set(variants), {v for c in claims.values() for v in c.variants}
        if chosen - known:
            raise NothingToRun(f"--variants: no chosen claim has {', '.join(sorted(chosen - known))} "
                               f"(they have {', '.join(sorted(known))})")
        for k, c in claims.items():
            if not chosen & set(c.variants):
                note(f"warning: {k} has none of --variants (it has {', '.join(c.variants)}); nothing to run for it")
        claims = {k: c.model_copy(update={"variants": {v: o for v, o in c.variants.items() if v in chosen}})
                  for k, c in claims.items() if chosen & set(c.variants)}
    if seeds:
        claims = {k: c.model_copy(update={"profiles": {**c.profiles, profile: c.profiles[profile].model_copy(
            update={"seeds": c.profiles[profile].seeds[: seeds]})}}) for k, c in claims.items()
            if profile in c.profiles}
    trained = {arm for c in claims.values() if profile in c.profiles
               for v in c.variants for arm in needed_arms(c, v, profile)}
    if set(arms or []) - trained:
        raise NothingToRun(f"--arms: no chosen claim trains {', '.join(sorted(set(arms) - trained))} at profile "
                           f"{profile} (they train {', '.join(sorted(trained))})")
    return claims


def listing(claim: Claim, store) -> list[str]:
    """`repro list`'s lines for one claim: its check, and per profile and variant the arms, seeds and how many
    of its results are stored."""
    lines = [f"{claim.id}: {claim.check.kind} {claim.check.metric} {claim.check.arms}  [{claim.source.file}]"]
    for profile, prof in claim.profiles.items():
        for variant in claim.variants:
            runs = plan_claim(claim, variant, profile, precision=twin_precision(claim, variant, profile, store))
            have = sum(store.path(profile, claim.id, variant, arm, r).exists() for arm, rs in runs.items() for r in rs)
            total = sum(len(rs) for rs in runs.values())
            lines.append(f"  {profile:5s} {variant:14s} arms {','.join(runs)}  seeds {prof.seeds}  results {have}/{total}")
    observed = [a for a in claim.arms if claim.is_observed(a)]
    if observed:
        lines.append(f"  observed arms (values measured elsewhere, not trained): {', '.join(observed)}")
    return lines
