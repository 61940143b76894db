"""The sampling design, locked once its data have been looked at.

A claim's design at a profile is the seeds its profile lists, its `sequential:` block (or none: one fixed look)
and the check's alpha. None of it is in a run key (so that looks share runs), which left it open to editing after
the data were in: a claim INCONCLUSIVE at its sequential looks could be re-declared as one fixed look at 11 seeds
and come out REPRODUCED. So the first judging that finds a claim's first look stored writes its design to

    results/<profile>/<claim>/<variant>/design.lock      (JSON: the design, its hash, when it was recorded)

and every later judging compares the spec's design with it:

  the same design                   judged as before
  a new design on fresh seeds       none of the seeds it may use (up to its cap) were in a recorded design:
                                    recorded beside the old one and judged (its runs are new runs)
  anything else                     NOT RUN: the design changed after its data were looked at; a new design
                                    needs fresh seeds or a new profile

The name does not end in .json, so nothing that walks result files reads it.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

from .store import atomic_write

RECORD = "design.lock"


def design_of(claim, profile: str) -> dict:
    prof = claim.profiles[profile]
    seq = prof.sequential
    return {"seeds": list(prof.seeds), "alpha": claim.check.alpha,
            "sequential": None if seq is None else {"max_seeds": seq.max_seeds, "group": seq.group,
                                                     "spending": seq.spending}}


def digest(design: dict) -> str:
    return hashlib.sha256(json.dumps(design, sort_keys=True).encode()).hexdigest()


def seeds_of(design: dict) -> set[int]:
    """Every seed the design may use: its own, then (sequential) the next integers up to its cap."""
    seeds, nxt = list(design["seeds"]), max(design["seeds"]) + 1
    cap = design["sequential"]["max_seeds"] if design["sequential"] else len(seeds)
    while len(seeds) < cap:
        if nxt not in seeds:
            seeds.append(nxt)
        nxt += 1
    return set(seeds)


def summary(design: dict) -> str:
    seq = design["sequential"]
    looks = (f"sequential ({seq['spending']}, every {seq['group']} seeds up to {seq['max_seeds']})" if seq
             else "one fixed look")
    return f"seeds {design['seeds']}, {looks}, alpha {design['alpha']:g}"


def lock(root: Path, claim, variant: str, profile: str) -> str | None:
    """Called once a claim's first look is stored: records the spec's design if none is, and returns None when
    it may be judged, else the NOT RUN reason. A record that cannot be written (a read-only store) is no reason
    to refuse a judging; one that cannot be read is, as it may hide a design that was changed."""
    path = Path(root) / profile / claim.id / variant / RECORD
    design = design_of(claim, profile)
    entry = {"design": design, "hash": digest(design)}
    records: list = []
    if path.exists():
        try:
            records = json.loads(path.read_text())["designs"]
            known = [(r["hash"], r["design"]) for r in records]
            if any(digest(d) != h for h, d in known):
                raise ValueError("a hash does not match its design")
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"{path}: the recorded design cannot be read ({type(err).__name__}); restore it from git"
        if any(h == entry["hash"] for h, _ in known):
            return None
        used = set().union(*(seeds_of(d) for _, d in known))
        overlap = sorted(seeds_of(design) & used)
        if overlap:
            return (f"the design changed after its data were looked at: recorded {summary(known[-1][1])}, the spec "
                    f"now declares {summary(design)} on seeds already judged ({', '.join(map(str, overlap[:8]))}"
                    f"{' ...' if len(overlap) > 8 else ''}); a new design needs fresh seeds or a new profile "
                    f"({path})")
    entry["recorded"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        atomic_write(path, json.dumps({"designs": records + [entry]}, indent=1, sort_keys=True).encode())
    except OSError:
        pass
    return None
