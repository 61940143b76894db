"""What `repro run` does, as one library call a notebook can make too: plan the chosen claims' missing runs,
register the profile's rules before their first result, train them, and say what could not run.

    from repro.session import train_missing
    runner = train_missing("claims", claims, "quick", Store("results"), torch.device("cpu"))

The loop of looks that may follow is repro.looks.until_decided(claims, profile, store, runner, ...).
"""
from __future__ import annotations

import sys


class Refused(Exception):
    """The runs cannot start (an unwritable store, a tampered registration, an executor that is not installed):
    str() is the one line `repro run` prints after "error: "."""


def dry_run(claims: dict, profile: str, store, arms, device, probe: bool = False, folder=None) -> list[str]:
    """The lines of `repro run --dry-run`: the plan with each run's cost here and on a GPU; nothing is written.
    `folder` (with --until-decided): the next look of each sequential claim the stored seeds leave undecided is
    listed and costed too, judged as the looks judge it (the whole folder); later looks depend on its results."""
    from .cost import dry_run as costs
    from .plan import plan
    from .precision import before_training
    jobs = plan(list(claims.values()), profile, store, arms, device)
    looks, tags, said = ([], {}, []) if folder is None else _next_looks(folder, claims, profile, store, device, jobs)
    jobs += [job for job in looks if job.run.key in tags]
    return [f"profile {profile} on {device}: {len(claims)} claim(s)", *said, *before_training(jobs, device),
            *costs(jobs, store, device if probe else None, device, tags)]


def _next_looks(folder, claims: dict, profile: str, store, device, planned: list) -> tuple[list, dict, list]:
    """What --until-decided trains after the plan: the next look's jobs, a tag per run only a look adds, and the
    lines that say which looks they are."""
    from .looks import next_looks, sequential_claims
    from .spec import load_claims
    from .verdict import judge_folder
    everything = load_claims(folder)  # as written: the design the looks follow
    sequential = sequential_claims(everything, claims, profile)
    todo, jobs = next_looks(judge_folder(folder, everything, profile, store), sequential, claims, profile, store,
                            device)
    missing = [j for j in planned if j.claim in sequential and not j.path.exists()]
    waiting = sorted({f"{j.claim} [{j.variant}]" for j in missing if store.done(j.run.key) is None})
    copying = sorted({f"{j.claim} [{j.variant}]" for j in missing} - set(waiting))  # stored for another claim only
    said = []
    for v in todo:
        seq = v["sequential"]
        said.append(f"next look (--until-decided): {v['claim']} [{v['variant']}] at {v['next_look']} seeds (looks at "
                    f"{', '.join(map(str, seq['looks']))}; {seq['seeds_used']} stored); a later look only if this one "
                    "leaves it undecided")
    if waiting:
        said.append(f"next look: not known yet for {', '.join(waiting)}: their current look has runs to train below")
    if copying:
        said.append(f"next look: not known yet for {', '.join(copying)}: their current look has runs stored only for "
                    "another claim, copied into theirs (not trained) before they are judged")
    if not todo and not waiting and not copying:
        said.append("next look: none (each chosen sequential claim is decided, at its cap, or not testable for "
                    "another reason)")
    known = {j.run.key for j in planned}
    return jobs, {j.run.key: " (next look)" for j in jobs if j.run.key not in known}, said


def train_missing(folder, claims: dict, profile: str, store, device, *, arms=None, executor: str = "local",
                  force: bool = False, address=None, stack_seeds: bool = False):
    """Train every run the chosen claims need at `profile` that the store lacks, after registering the profile's
    rules where they are not yet (repro.registration); returns the executor (the looks reuse it). Progress goes to
    stdout, warnings to stderr; KeyboardInterrupt and OSError from the training pass through to the caller."""
    from .executors import make_executor
    from .plan import plan
    from .precision import before_training
    from .registration import ensure
    from .spec import load_claims
    from .store import OutsideStore
    try:
        store.probe()  # an unwritable results or cache folder fails now, not after the first run has trained
        jobs = plan(list(claims.values()), profile, store, arms, device)
    except (OSError, OutsideStore) as err:  # OutsideStore: a folder of the store linked elsewhere
        raise Refused(str(err)) from None
    reg = ensure(folder, load_claims(folder), profile, store.root, add_new=True)  # the rules before the results
    if reg.state == "tampered":
        raise Refused(reg.line())
    print(reg.line(), file=sys.stderr)
    store.registrations[profile] = reg.stamp  # every result trained now carries it (provenance.registration)
    for line in before_training(jobs, device):
        print(line, file=sys.stderr, flush=True)
    try:
        runner = make_executor(executor, store, device, force=force, address=address, stack_seeds=stack_seeds)
    except ValueError as err:
        raise Refused(str(err)) from None
    except ImportError as err:
        raise Refused(f"--executor {executor} needs {err.name}: pip install 'kd-repro[{executor}]'") from None
    via = "" if executor == "local" else f" via {executor}"
    distinct = len({job.run.key for job in jobs})  # a run shared by claims, variants or seeds (fixed_seed): once
    print(f"profile {profile} on {device}{via}: {distinct} runs planned over {len(claims)} claim(s)", flush=True)
    summary = runner.submit(jobs)
    print(f"done: {summary['counts']}")
    for (claim, variant), why in summary["not_runnable"].items():
        print(f"NOT RUN {claim} [{variant}]: {why}")
    return runner
