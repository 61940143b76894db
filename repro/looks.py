"""The loop of looks: train a sequential claim's next group of seeds until each chosen claim is decided.

`repro run --until-decided` calls `until_decided`; so can a notebook, with a store and an executor
(repro.executors.make_executor). Every look judges the whole claims folder as the report does (Holm within
the folder's family, repro.family), so a claim the loop calls decided is decided in the report too.
"""
from __future__ import annotations

import sys

from .family import declared
from .spec import load_claims


def say(line: str) -> None:
    """The loop's progress lines, as `repro run` prints them (flushed: a log file follows the looks)."""
    print(line, flush=True)


def until_decided(claims: dict, profile: str, store, executor, max_minutes: float | None = None,
                  folder: str = "claims", log=say) -> int:
    """Group-sequential runs: judge every claim of the folder (Holm within the folder's family, as the report
    does: repro.family), train the next look's seeds for the chosen claims that declare `sequential:` and are
    still undecided for lack of evidence (not a failed precondition, a missing dataset or a diverged run), and
    again, until each is decided or at its cap. Stops starting new looks after `max_minutes`.

    `claims`: the chosen claims (id -> Claim, as cut by --variants); `executor`: what trains a look's runs
    (its `device` and `submit(jobs)`); `log(line)`: each progress line (warnings go to stderr). Returns the
    exit status of `repro run`: 0, or 2 when no chosen claim declares `sequential:` at this profile."""
    import time
    from .family import describe
    from .precision import before_training
    from .verdict import families, judge_folder
    everything = load_claims(folder)  # the spec as written (not cut by --seeds): the design the looks follow
    sequential = sequential_claims(everything, claims, profile)
    if not sequential:
        print(f"--until-decided: no claim here declares `sequential:` in its '{profile}' profile", file=sys.stderr)
        return 2
    started, verdicts_seen, warned = time.monotonic(), False, False
    while True:
        judged = judge_folder(folder, everything, profile, store)
        if not verdicts_seen:  # the family the loop corrects within, once: the report's
            log(describe(folder, profile, families(judged), declared(folder, everything) is not None))
            verdicts_seen = True
        verdicts = [v for v in judged if v["claim"] in sequential]
        todo, jobs = next_looks(verdicts, sequential, claims, profile, store, executor.device)
        for v in verdicts:
            look = f"look {len(v['looks'])}, {v['sequential']['seeds_used']} seeds" if v.get("looks") else "no look"
            log(f"  {v['status']:<14} {v['claim']} [{v['variant']}] ({look})"
                + (f" -> next look at {v['next_look']} seeds" if v["status"] == "INCONCLUSIVE" and v.get("next_look")
                   else ""))
        if not todo:
            log("until-decided: every sequential claim is decided, at its cap, or not testable for another reason")
            return 0
        if max_minutes is not None and time.monotonic() - started > 60 * max_minutes:
            log(f"until-decided: stopped after {max_minutes:g} minutes with {len(todo)} claim(s) undecided; "
                "run the same command again to go on")
            return 0
        if jobs and all(job.path.exists() for job in jobs):  # nothing to train: another pass would decide nothing
            log("until-decided: the next looks' runs are all stored and judging still wants them; stopping")
            return 0
        log(f"until-decided: next looks for {len(todo)} claim(s), {len(jobs)} runs (stored ones skipped)")
        if not warned and (lines := before_training(jobs, executor.device)):
            print("\n".join(lines), file=sys.stderr, flush=True)
            warned = True
        executor.submit(jobs)


def sequential_claims(everything: dict, claims: dict, profile: str) -> dict:
    """The chosen claims, as written in the folder (`everything`), whose `profile` declares `sequential:`."""
    return {k: c for k, c in everything.items()
            if k in claims and c.profiles.get(profile) and c.profiles[profile].sequential}


def next_looks(verdicts: list[dict], sequential: dict, claims: dict, profile: str, store, device) -> tuple[list, list]:
    """The verdicts another look may decide, and that look's jobs (the check's arms at the next look's seeds,
    with what they learn from). Only INCONCLUSIVE for lack of evidence (undecided, or past its own boundary but
    not Holm's) with a look left: a failed precondition, a diverged run or no spread has no next look.
    `sequential`: the claims as written (their design); `claims`: as chosen (cut by --variants)."""
    from .plan import variant_jobs
    from .precision import as_declared
    todo = [v for v in verdicts if v["claim"] in sequential and v.get("next_look") and v["status"] == "INCONCLUSIVE"
            and v["variant"] in claims[v["claim"]].variants]
    with as_declared():  # a look extends the runs judging read (REPRO_PRECISION does not choose those)
        jobs = [job for v in todo for claim in [sequential[v["claim"]]]
                for job in variant_jobs(claim, v["variant"], profile, store,
                                        claim.profiles[profile].seeds_for(v["next_look"]), claim.check.arms, device)]
    return todo, jobs
