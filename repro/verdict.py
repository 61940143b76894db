"""Stored results -> Verdicts. Reads results, never trains; the numbers go through stats.py.

REPRODUCED      the check supports the claim at alpha (after Holm across the report's claims)
NOT REPRODUCED  the interval rules the claimed effect out
INCONCLUSIVE    the interval still spans the decision, or a precondition failed (with the numbers)
NOT RUN         no usable results for this profile (missing data, missing runs, stale or corrupt files)
"""
from __future__ import annotations

import math
from pathlib import Path

from .data import availability
from .plan import plan_claim
from .registry import CHECKS
from .spec import Check, Claim
from .stats import holm
from .store import CorruptResult, Store

DECISION_TO_STATUS = {"supported": "REPRODUCED", "refuted": "NOT REPRODUCED", "undecided": "INCONCLUSIVE"}


class Missing(Exception):
    """No usable results; the message is the NOT RUN reason."""


def collect(claim: Claim, variant: str, profile: str, store: Store) -> dict[str, list[dict]]:
    """Arm -> stored result per seed, for exactly the runs the current spec asks for."""
    if profile not in claim.profiles:
        raise Missing(f"the spec has no '{profile}' profile")
    results: dict[str, list[dict]] = {}
    for arm, runs in plan_claim(claim, variant, profile).items():
        reason = availability(runs[0].arm.data.name)
        if reason:
            raise Missing(reason)
        results[arm] = []
        for run in runs:
            path = store.path(profile, claim.id, variant, arm, run)
            try:
                found = store.find(path)
            except CorruptResult as err:
                raise Missing(f"corrupt result, re-run it: {err}") from None
            if found is None:
                stale = list(path.parent.glob(f"seed{run.seed}-*.json"))
                why = "stale (spec or code changed since)" if stale else "missing"
                raise Missing(f"results for arm '{arm}' seed {run.seed} are {why}: run "
                              f"`repro run {claim.id} --profile {profile}`")
            results[arm].append(found)
    return results


def metric_values(results: dict[str, list[dict]], check: Check) -> dict[str, list[float]]:
    """The check's metric at the last epoch, per arm and seed. A diverged run counts as NaN, never dropped."""
    out = {}
    for arm in check.arms:
        out[arm] = [r["final"][check.metric] if r["status"] == "done" else math.nan for r in results[arm]]
    return out


def run_check(results, check: Check) -> dict:
    values = metric_values(results, check)
    diverged = {arm: sum(math.isnan(v) for v in vs) for arm, vs in values.items()}
    if any(diverged.values()):
        return {"decision": "undecided", "p": math.nan, "values": values,
                "reason": f"diverged runs per arm: {diverged}"}
    return {**CHECKS.get(check.kind)(values, check), "values": values}


def decide(claim: Claim, variant: str, profile: str, store: Store) -> dict:
    base = {"claim": claim.id, "variant": variant, "profile": profile, "check": claim.check.kind,
            "metric": claim.check.metric, "arms": claim.check.arms, "alpha": claim.check.alpha,
            "margin": claim.check.margin, "justification": claim.check.justification}
    try:
        results = collect(claim, variant, profile, store)
    except Missing as why:
        return {**base, "status": "NOT RUN", "reason": str(why), "p": math.nan, "preconditions": []}
    preconditions = []
    for pre in claim.preconditions:
        outcome = run_check(results, pre)
        preconditions.append({"check": pre.kind, "arms": pre.arms, "metric": pre.metric,
                              "justification": pre.justification, "held": outcome["decision"] == "supported",
                              "p": outcome.get("p"), "values": outcome["values"]})
    outcome = run_check(results, claim.check)
    verdict = {**base, **outcome, "seeds": claim.profiles[profile].seeds, "preconditions": preconditions,
               "wall_s": sum(r["wall_s"] for rs in results.values() for r in rs),
               "run_keys": {arm: [r["key"] for r in rs] for arm, rs in results.items()},
               "devices": sorted({r["device"] for rs in results.values() for r in rs}),
               "versions": sorted({f"torch {r['provenance']['torch']}, python {r['provenance']['python']}"
                                   for rs in results.values() for r in rs}),
               "commits": sorted({str(r["provenance"]["git_commit"]) for rs in results.values() for r in rs})}
    failed = [p for p in preconditions if not p["held"]]
    if failed:
        verdict["status"] = "INCONCLUSIVE"
        verdict["reason"] = "precondition failed: " + "; ".join(
            f"{p['arms'][0]} {p['check']} {p['arms'][1]} on {p['metric']} (values {p['values']})" for p in failed)
    return verdict


def finalize(verdicts: list[dict]) -> list[dict]:
    """Holm across every tested claim of the report, then map decisions to verdict names."""
    adjusted = holm([v["p"] if "status" not in v else math.nan for v in verdicts])
    for v, p_holm in zip(verdicts, adjusted):
        v["p_holm"] = p_holm
        if "status" in v:
            continue
        decision = v["decision"]
        if decision == "supported" and not p_holm < v["alpha"]:
            decision = "undecided"  # significant alone, not after correcting for the other claims
            v["reason"] = f"p = {v['p']:.3g} < alpha, but Holm-adjusted p = {p_holm:.3g} is not"
        v["status"] = DECISION_TO_STATUS[decision]
        v.setdefault("reason", explain(v))
    return verdicts


def explain(v: dict) -> str:
    lo, hi = v.get("ci", (math.nan, math.nan))
    text = (f"{v['arms'][0]} - {v['arms'][1]} on {v['metric']}: {v.get('diff', math.nan):+.4g} "
            f"[{lo:.4g}, {hi:.4g}], {v.get('test', '')} p = {v['p']:.3g} (Holm {v['p_holm']:.3g})")
    if v["status"] == "INCONCLUSIVE" and v.get("seeds_to_decide"):
        text += f"; about {v['seeds_to_decide']} seeds per arm would decide it at this effect size"
    return text


def decide_all(claims: dict[str, Claim], profile: str, store: Store) -> list[dict]:
    return finalize([decide(c, variant, profile, store) for c in claims.values() for variant in c.variants])
