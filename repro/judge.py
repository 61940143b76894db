"""Decide claims without pytest: `repro judge` on the command line, `repro.judge(...)` from a notebook.

The same decision as `pytest -m claims` (verdict.decide + Holm over the claims judged together), from
stored results and observed values; nothing trains, and no verdicts file is written (pytest -m claims
writes the report's). A claim whose arms are all observed (repro/spec/observed.py) is decided from its
values alone, whatever the profile.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `import repro` binds repro.judge, and stays light (no scipy, no torch): the spec is read on use
    from .spec import Claim


def as_claim(claim, folder: str | Path = ".") -> Claim:
    """A Claim from a Claim, a spec file's path, or a spec as a dict (named `<id>.yaml` in `folder`)."""
    from .spec import Claim, claim_from_raw, load_claim
    if isinstance(claim, Claim):
        return claim
    if isinstance(claim, dict):
        return claim_from_raw(claim, Path(folder) / f"{claim.get('id', 'claim')}.yaml")
    return load_claim(claim)


def judge(*claims, profile: str = "auto", results: str | Path | None = None, folder: str | Path = ".") -> list[dict]:
    """Verdicts (dicts, as in verdicts.json) of every variant of the given claims, Holm across them.

        import repro
        v, = repro.judge({"id": "rerun", "source": {...}, "statement": "...",
                          "arms": {"rerun": {"observed": {"metric": "top1", "units": "%", "provenance": "...",
                                                          "values": [76.20, 75.80, 75.89, 75.85, 76.15]}}},
                          "check": {"kind": "matches", "metric": "top1", "arms": ["rerun"], "value": 76.32,
                                    "tolerance": 0.3, "alpha": 0.05, "justification": "..."}})
        v["status"], v["p"], v["reason"]

    `profile` (default auto) and `results` (a results folder, default ./results) matter only for trained arms."""
    from .plan import resolve_profile
    from .store import Store
    from .verdict import decide_guarded, finalize
    chosen = [as_claim(c, folder) for c in claims]
    store = Store(results or "results")
    profile = resolve_profile(profile)
    return finalize([decide_guarded(c, variant, profile, store) for c in chosen for variant in c.variants])
