"""Stored results -> Verdicts. Reads results, never trains; the numbers go through stats.py.

REPRODUCED      the check supports the claim at alpha, after Holm across the report's tested claims
NOT REPRODUCED  the interval rules the claimed effect out (the refuting one-sided test at alpha)
INCONCLUSIVE    the interval still spans the decision (with about how many seeds would decide it), a
                precondition failed (with its numbers), or runs diverged (counted per arm)
NOT RUN         no usable results for this profile (missing data, missing or stale runs, corrupt files,
                a metric the results lack)
"""
from __future__ import annotations

import math

from .data import availability
from .models import weights_availability
from .metrics import run_value
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
                weights = weights_availability(run.arm.model.name, run.arm.model.params)
                if weights:
                    raise Missing(weights)
                stale = list(path.parent.glob(f"seed{run.seed}-*.json"))
                why = "stale (spec or code changed since)" if stale else "missing"
                raise Missing(f"results for arm '{arm}' seed {run.seed} are {why}: run "
                              f"`repro run {claim.id} --profile {profile}`")
            results[arm].append(found)
    return results


def metric_values(results: dict[str, list[dict]], check: Check) -> dict[str, list[float]]:
    """The check's metric per arm and seed (repro.metrics: the selected epoch's value, or a reducer such
    as `first:train_acc`). A diverged run (status other than "done", or a non-finite value) counts as
    NaN: it is counted, never dropped. A metric the results lack makes the claim NOT RUN."""
    out = {}
    for arm in check.arms:
        out[arm] = []
        for r in results[arm]:
            try:
                value = run_value(r, check.metric)
            except (KeyError, IndexError) as err:
                raise Missing(f"arm '{arm}': {str(err).strip(chr(34) + chr(39))}") from None
            except TypeError:  # a stored null (a NaN written as JSON null): no finite result
                value = math.nan
            out[arm].append(value if value is not None and math.isfinite(value) else math.nan)
    return out


def _distinct(results: dict[str, list[dict]], values: dict[str, list[float]], check: Check) -> dict[str, list[float]]:
    """An arm whose runs repeat one run (a single fixed-seed run reused for every seed) has one
    observation, not one per seed: unpaired checks (matches, paired: false) see each run once. Paired
    checks keep the repeats, so the comparison is with that one run, seed by seed."""
    if check.kind != "matches" and check.paired is not False:
        return values
    out = {}
    for arm, vs in values.items():
        seen: dict[str, float] = {}
        for r, v in zip(results[arm], vs):
            seen.setdefault(r["key"], v)
        out[arm] = list(seen.values())
    return out


def run_check(results, check: Check) -> dict:
    """The check on the stored runs: the stats result plus `values` and `diverged` (runs per arm that did
    not finish with a finite metric). With any diverged run the check is not computed: undecided."""
    values = metric_values(results, check)
    diverged = {arm: sum(math.isnan(v) for v in vs) for arm, vs in values.items()}
    if any(diverged.values()):
        total = {arm: len(vs) for arm, vs in values.items()}
        return {"decision": "undecided", "p": math.nan, "values": values, "diverged": diverged,
                "reason": "diverged runs (no finite result) per arm: " + ", ".join(
                    f"{arm} {diverged[arm]} of {total[arm]}" for arm in values)
                + "; a diverged run is an outcome, so the check waits for the spec's protocol to finish every seed"}
    try:
        outcome = CHECKS.get(check.kind)(_distinct(results, values, check), check)
    except ValueError as err:  # e.g. paired: true with arms of different sizes
        raise Missing(f"check '{check.kind}' cannot run on these results: {err}") from None
    return {**outcome, "values": values, "diverged": diverged}


def _pre_text(pre: dict) -> str:
    if "estimand" not in pre:
        return f"{pre['check']} on {pre['metric']} ({', '.join(pre['arms'])}): {pre.get('reason', 'not computed')}"
    lo, hi = pre["estimate_ci"]
    return (f"{pre['hypothesis']} on {pre['metric']}: {pre['estimand']} = {_num(pre['estimate'])} "
            f"[{_num(lo)}, {_num(hi)}], p = {_num(pre['p'], '.3g')} (alpha {pre['alpha']}); values "
            + "; ".join(f"{arm} {', '.join(_num(x) for x in vs)}" for arm, vs in pre["values"].items()))


def _num(x, fmt: str = ".4g") -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def decide(claim: Claim, variant: str, profile: str, store: Store) -> dict:
    check = claim.check
    base = {"claim": claim.id, "variant": variant, "profile": profile, "check": check.kind,
            "metric": check.metric, "arms": check.arms, "alpha": check.alpha, "margin": check.margin,
            "tolerance": check.tolerance, "value": check.value, "better": check.better, "top": check.top,
            "derived": check.derived, "bound": check.bound, "justification": check.justification}
    try:
        results = collect(claim, variant, profile, store)
        preconditions = []
        for pre in claim.preconditions:
            outcome = run_check(results, pre)
            entry = {"check": pre.kind, "arms": pre.arms, "metric": pre.metric, "alpha": pre.alpha,
                     "justification": pre.justification, "held": outcome["decision"] == "supported",
                     **{k: outcome[k] for k in ("p", "values", "diverged", "reason", "estimand", "estimate",
                                                "estimate_ci", "hypothesis", "test") if k in outcome}}
            preconditions.append(entry)
        outcome = run_check(results, check)
    except Missing as why:
        return {**base, "status": "NOT RUN", "reason": str(why), "p": math.nan, "preconditions": []}
    verdict = {**base, **outcome, "seeds": claim.profiles[profile].seeds, "preconditions": preconditions,
               "wall_s": sum(r["wall_s"] for rs in results.values() for r in rs),
               "run_keys": {arm: [r["key"] for r in rs] for arm, rs in results.items()},
               "devices": sorted({r["device"] for rs in results.values() for r in rs}),
               "versions": sorted({f"torch {r['provenance']['torch']}, python {r['provenance']['python']}"
                                   for rs in results.values() for r in rs}),
               "commits": sorted({str(r["provenance"]["git_commit"]) for rs in results.values() for r in rs})}
    comparable, why = claim.numbers_comparable(variant, profile)
    if check.against_source_number and not comparable:
        verdict["not_comparable"] = why
        if verdict["decision"] == "refuted":  # the profile could never have reached the source's number
            verdict["decision"] = "undecided"
            verdict["reason"] = (f"not comparable with the source at the {profile} profile ({why}): measured "
                                 f"{verdict['estimand']} = {_num(verdict['estimate'])} [{_num(verdict['estimate_ci'][0])}, "
                                 f"{_num(verdict['estimate_ci'][1])}] against the source's {_num(verdict['reference'])}"
                                 f"; at this scale a check against the source's own number cannot refute it")
    failed = [p for p in preconditions if not p["held"]]
    if failed:  # nothing was tested: never NOT REPRODUCED, and not part of the Holm family
        verdict["status"] = "INCONCLUSIVE"
        verdict["reason"] = "precondition failed: " + " | ".join(_pre_text(p) for p in failed)
    return verdict


def finalize(verdicts: list[dict]) -> list[dict]:
    """Holm across every tested claim of the report (shown beside the raw p), then map decisions to
    verdict names. Claims not tested (NOT RUN, failed precondition, diverged runs) are not in the family."""
    adjusted = holm([v["p"] if "status" not in v else math.nan for v in verdicts])
    family = sum(not math.isnan(p) for p in adjusted)
    for v, p_holm in zip(verdicts, adjusted):
        v["p_holm"] = p_holm
        v["holm_family"] = family
        if "status" in v:
            continue
        decision = v["decision"]
        demoted = decision == "supported" and not p_holm < v["alpha"]
        if demoted:
            decision = "undecided"  # significant alone, not after correcting for the other claims
        v["status"] = DECISION_TO_STATUS[decision]
        if "reason" not in v:
            v["reason"] = explain(v)
            if demoted:
                v["reason"] += f"; p < alpha alone, but not after Holm across {family} tested claims"
    return verdicts


def explain(v: dict) -> str:
    """One line: the estimate and its interval, the claim, raw and Holm p, the companion test and its floor,
    and for INCONCLUSIVE about how many seeds would decide it."""
    if "estimand" not in v:
        return v.get("reason", "")
    lo, hi = v["estimate_ci"]
    text = (f"{v['estimand']} on {v['metric']} = {_num(v['estimate'])} [{_num(lo)}, {_num(hi)}] "
            f"({round(100 * (1 - 2 * v['alpha']))}% CI); claim {v['hypothesis']}: {v['test']} "
            f"p = {_num(v['p'], '.3g')} (Holm {_num(v.get('p_holm'), '.3g')})")
    companion = v.get("companion") or {}
    if companion.get("p") is not None and not math.isnan(companion["p"]):
        floor = companion["p_floor"]
        text += (f"; {companion['test']} p = {_num(companion['p'], '.3g')} (floor {_num(floor, '.3g')}"
                 + (", cannot reach alpha with these seeds)" if floor >= v["alpha"] else ")"))
    if v.get("status") == "INCONCLUSIVE":
        seeds = v.get("seeds_to_decide")
        text += (f"; about {seeds} seeds per arm would decide it at the observed effect" if seeds else
                 "; at the observed effect no practical number of seeds would decide it (it sits on the boundary)")
    return text


def decide_all(claims: dict[str, Claim], profile: str, store: Store) -> list[dict]:
    return finalize([decide(c, variant, profile, store) for c in claims.values() for variant in c.variants])
