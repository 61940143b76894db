"""Stored results -> Verdicts. Reads results, never trains; the numbers go through repro/stats/.

REPRODUCED      the check supports the claim at alpha, after Holm across the report's tested claims
NOT REPRODUCED  the interval rules the claimed effect out (the refuting test at alpha, after Holm across
                the same claims: a refutation is as strong a statement as a reproduction)
INCONCLUSIVE    the interval still spans the decision (with about how many seeds would decide it), a
                precondition failed (with its numbers), or runs diverged (counted per arm)
NOT RUN         no usable results for this profile (missing data, missing or stale runs, corrupt files,
                a metric the results lack)
"""
from __future__ import annotations

import math

from .data import availability
from .designs import lock
from .family import DEFAULT as DEFAULT_FAMILY
from .models import weights_availability
from .metrics import run_value
from .spec.observed import describe as describe_observed, pseudo_results, unpaired
from .plan import plan_claim, twin_precision
from .precision import as_declared, override, used_precision
from .registry import CHECKS
from .stats.sequential import Design, _first, judge
from .spec import Check, Claim, public_path
from .stats.multiplicity import holm
from .wording import look_text, same_boundary
from .store import CorruptResult, OutsideStore, Store

DECISION_TO_STATUS = {"supported": "REPRODUCED", "refuted": "NOT REPRODUCED", "undecided": "INCONCLUSIVE"}


class Missing(Exception):
    """No usable results; the message is the NOT RUN reason."""


def collect(claim: Claim, variant: str, profile: str, store: Store, seeds: list[int] | None = None,
            arms: list[str] | None = None, precision: str | None = None) -> dict[str, list[dict]]:
    """Arm -> stored result per seed, for exactly the runs the current spec asks for (`seeds`, `arms`: those
    of a sequential look; `precision`: of its fp32 twin, repro.plan.twin_precision). Decided from the stored
    results alone: a missing dataset or missing weights are the NOT RUN reason only for a result that is
    missing too."""
    compared = [a for c in [claim.check, *claim.preconditions] for a in c.arms]
    if profile not in claim.profiles and not all(claim.is_observed(a) for a in compared):
        raise Missing(f"the spec has no '{profile}' profile")
    # observed arms: their values, whatever the profile (they were not trained at one)
    results: dict[str, list[dict]] = {a: pseudo_results(claim, a, variant) for a in dict.fromkeys(arms or compared)
                                      if claim.is_observed(a)}
    for arm, runs in plan_claim(claim, variant, profile, seeds, arms, precision).items():
        results[arm] = []
        for run in runs:
            try:
                path = store.path(profile, claim.id, variant, arm, run)
            except OutsideStore:  # a folder of the store linked elsewhere: its files are not this store's
                raise Missing(f"the results folder of arm '{arm}' leads out of the results folder (a symlink?); "
                              f"make it a plain folder and run `repro run {claim.id} --profile {profile}`") from None
            try:
                found = store.find(path, run.key)
            except CorruptResult as err:  # the path as the report may show it: never this machine's absolute path
                raise Missing(f"corrupt result, re-run it: {public_path(err.path or path)}: {err.why or err}") from None
            if found is None:  # only now do the data and weights matter: they say why it could not run
                unavailable = availability(run.arm.data.name) or weights_availability(run.arm.model.name,
                                                                                       run.arm.model.params)
                if unavailable:
                    raise Missing(unavailable)
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


def looked_at(claim: Claim, variant: str, profile: str, store: Store, results: dict,
              precision: str | None = None) -> tuple[dict, Design, dict]:
    """A sequential profile: the check arms' results at the last look whose seeds are all stored (the first
    look is the profile's own seeds, already in `results`), the design, and the check arms' seeds stored beyond
    that look (arm -> seeds): never judged before their look is complete, and said so."""
    seq, profiled = claim.profiles[profile].sequential, claim.profiles[profile]
    design = Design.of(len(profiled.seeds), seq.max_seeds, seq.group, claim.check.alpha, seq.spending)
    used = profiled.seeds
    for n in design.looks[1:]:
        try:  # the other arms (preconditions, teachers) keep the first look's runs
            results = {**results, **collect(claim, variant, profile, store, profiled.seeds_for(n),
                                            claim.check.arms, precision)}
            used = profiled.seeds_for(n)
        except Missing:
            break
    beyond = [s for s in profiled.seeds_for(design.looks[-1]) if s not in used]
    return results, design, _stored_seeds(claim, variant, profile, store, beyond, precision)


def _stored_seeds(claim: Claim, variant: str, profile: str, store: Store, seeds: list[int],
                  precision: str | None) -> dict[str, list[int]]:
    """Check arm -> those of `seeds` whose result is stored (a damaged file counts as not stored)."""
    stored = {}
    for arm, runs in plan_claim(claim, variant, profile, seeds, claim.check.arms, precision).items():
        for run in runs if arm in claim.check.arms else []:  # not the teachers a plan brings along
            try:
                if store.find(store.path(profile, claim.id, variant, arm, run), run.key) is not None:
                    stored.setdefault(arm, []).append(run.seed)
            except (CorruptResult, OutsideStore):
                continue
    return stored


def reused_behind(claim: Claim, variant: str, profile: str, results: dict, arms: list[str]) -> list[str]:
    """The arms among `arms`, and those they learn from or start from (teacher, init_from, transitively), whose
    runs are one run reused for every seed (a fixed_seed arm): a verdict on these arms holds conditionally on
    that run, whether it is compared itself or only teaches every seed's student."""
    out, seen, todo = [], set(), list(arms)
    while todo:
        name = todo.pop(0)
        if name in seen or name not in results or claim.is_observed(name):  # observed: no runs, no links
            continue
        seen.add(name)
        runs = results[name]
        if len(runs) > 1 and len({r["key"] for r in runs}) == 1:
            out.append(name)
        arm = claim.resolve(name, variant, profile)
        todo += [link for link in (*arm.teacher_names, arm.init_from) if link]
    return out


def run_check(results, check: Check, design: Design | None = None) -> dict:
    """The check on the stored runs: the stats result plus `values` and `diverged` (runs per arm that did
    not finish with a finite metric). With any diverged run, or an arm with fewer than two distinct runs
    (one fixed-seed run reused for every seed), the check is not computed: undecided, with the reason."""
    values = metric_values(results, check)
    distinct = {arm: len({r["key"] for r in results[arm]}) for arm in check.arms}
    single = [arm for arm, n in distinct.items() if n < 2]
    # One run reused for every seed (a fixed-seed teacher, as a source ships one pretrained model) is a
    # constant, not a sample: compared seed by seed with arms that vary, the paired differences carry their
    # spread, and the test is valid conditionally on that one run. Alone, or unpaired, nothing can be tested.
    paired = check.paired is not False and len({len(results[arm]) for arm in check.arms}) == 1
    conditional = single and len(single) < len(check.arms) and paired and check.kind != "matches"
    if single and not conditional:
        return {"decision": "undecided", "p": math.nan, "values": values, "diverged": {arm: 0 for arm in values},
                "reason": "too few distinct runs: " + ", ".join(
                    f"arm '{arm}' has {distinct[arm]} distinct run for its {len(results[arm])} seeds" for arm in single)
                + " (one run reused, e.g. a fixed_seed arm): its spread is unmeasured, so nothing can be tested"}
    diverged = {arm: sum(math.isnan(v) for v in vs) for arm, vs in values.items()}
    if any(diverged.values()):
        total = {arm: len(vs) for arm, vs in values.items()}
        return {"decision": "undecided", "p": math.nan, "values": values, "diverged": diverged,
                "reason": "diverged runs (no finite result) per arm: " + ", ".join(
                    f"{arm} {diverged[arm]} of {total[arm]}" for arm in values)
                + "; a diverged run is an outcome, so the check waits for the spec's protocol to finish every seed"}
    try:
        tested = _distinct(results, values, check)
        if design is not None:
            return {**sequential_outcome(tested, check, design), "values": values, "diverged": diverged,
                    **({"conditional_on": single} if conditional else {})}
        outcome = CHECKS.get(check.kind)(tested, check)
    except ValueError as err:  # e.g. paired: true with arms of different sizes
        raise Missing(f"check '{check.kind}' cannot run on these results: {err}") from None
    if conditional:
        outcome["conditional_on"] = single
    # _rerun: finalize recomputes seeds_to_decide at the Holm thresholds the claim faces (then drops it)
    return {**outcome, "values": values, "diverged": diverged, "_rerun": (tested, check)}


def sequential_outcome(values: dict, check: Check, design: Design) -> dict:
    """The check at every look taken (repro.sequential.judge): the deciding (or last) look's numbers, with the
    sequential decision and p-values (what Holm reads) and the path, look by look."""
    judged = judge(values, check, design)
    outcome = dict(judged["outcomes"][-1])  # the numbers of every seed stored; the decision from p_seq
    looks, last = judged["looks"], judged["looks"][-1]
    # the next look's size, while there is one (--until-decided takes it if the claim is still INCONCLUSIVE
    # after Holm: undecided, or past its own boundary but not the family's)
    next_look = None if judged["complete"] else design.looks[len(looks)]
    # the interval: the repeated confidence interval of the last look (Jennison and Turnbull), at the level of
    # its stricter boundary, so it is as wide as the looks make it (what it shows against each side's test:
    # docs/statistics.md, "Adding seeds until decided")
    n, level = looks[-1]["seeds"], min(looks[-1]["boundary"], looks[-1]["boundary_refute"])
    widened = CHECKS.get(check.kind)(_first(values, n), check.model_copy(update={"alpha": level}))
    outcome.update(estimate_ci=widened["estimate_ci"], ci=widened["ci"], ci_level=widened["ci_level"])
    outcome["_widen"] = (_first(values, n), check, level / check.alpha)  # finalize: the interval at Holm's level
    outcome.update(decision=judged["decision"], p=judged["p_seq"], p_refute=judged["p_refute_seq"],
                   p_look=outcome["p"], p_refute_look=outcome.get("p_refute"), looks=looks, next_look=next_look,
                   seeds_to_decide=None,
                   sequential={"looks": list(design.looks), "boundaries": list(judged["boundaries"]),
                               "boundaries_refute": list(judged["boundaries_refute"]),
                               "exact": {"support": judged["exact"][0], "refute": judged["exact"][1]},
                               "spending": design.spending, "seeds_used": last["seeds"],
                               "stopped_at": judged["stopped_at"] + 1,
                               "decided_at": judged["stopped_at"] + 1 if judged["decision"] != "undecided" else None})
    return outcome


def _sequential_text(v: dict) -> str:
    seq, looks = v["sequential"], v["looks"]
    crossed = looks[seq["decided_at"] - 1] if seq["decided_at"] else looks[-1]
    text = (f"; group-sequential ({seq['spending']} spending over looks at {', '.join(map(str, seq['looks']))} "
            f"seeds, {len(looks)} taken): ")
    text += (f"crossed its boundary at look {seq['decided_at']} ({crossed['seeds']} seeds per arm: "
             if seq["decided_at"] else f"no boundary crossed yet (last look, {crossed['seeds']} seeds per arm: ")
    up, down = ("exact for the looks' simulated joint law" if seq.get("exact", {}).get(side) else
                "by the union bound over the looks" for side in ("support", "refute"))
    text += (f"{look_text(crossed)}); the p above is the sequential one (what Holm reads, "
             + (up if up == down else f"{up}; the p against, {down}") + ") and the interval is the last look's repeated confidence interval, at the level of its "
             + ("boundary" if same_boundary(looks[-1].get("boundary"), looks[-1].get("boundary_refute"))
               else "stricter boundary"))
    if v.get("waiting"):
        text += ("; stored beyond the last complete look, so not used: "
                 + ", ".join(f"{arm} seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                             for arm, seeds in v["waiting"].items())
                 + (" (a look is judged once all its seeds are stored)" if v.get("status") == "INCONCLUSIVE" else ""))
    if v.get("status") == "INCONCLUSIVE" and v.get("next_look"):
        text += f"; `repro run --until-decided` trains up to {v['next_look']} seeds for the next look"
    elif v.get("status") == "INCONCLUSIVE":
        text += ("; the cap is reached" if len(looks) == len(seq["looks"]) else
                 "; no further look is taken: more seeds at this profile cannot decide it (see above)")
    return text


def _conditional_text(v: dict) -> str:
    return (f"; conditional on the one run of {', '.join(v['conditional_on'])} (reused for every seed, compared "
            "or learnt from: a constant here, so the test says nothing about other runs of it)")


def _pre_text(pre: dict) -> str:
    if "estimand" not in pre:
        return f"{pre['check']} on {pre['metric']} ({', '.join(pre['arms'])}): {pre.get('reason', 'not computed')}"
    lo, hi = pre["estimate_ci"]
    return (f"{pre['hypothesis']} on {pre['metric']}: {pre['estimand']} = {_num(pre['estimate'])} "
            f"[{_num(lo)}, {_num(hi)}], p = {_num(pre['p'], '.3g')} (alpha {pre['alpha']})"
            + (_conditional_text(pre) if pre.get("conditional_on") else "") + "; values "
            + "; ".join(f"{arm} {', '.join(_num(x) for x in vs)}" for arm, vs in pre["values"].items()))


def _percent(level: float) -> str:
    """A confidence level in percent, with the digits that keep it below 100 (99.97, not 100)."""
    for digits in range(3, 8):
        text = format(100 * level, f".{digits}g")
        if level >= 1 or float(text) < 100:
            return text
    return text


def stamps(arms: list[str], results: dict[str, list[dict]]) -> list[str]:
    """The registrations the runs of `arms` were trained under ("" for a run trained before any)."""
    return sorted({r["provenance"].get("registration") or "" for a in dict.fromkeys(arms) for r in results.get(a, [])})


def _num(x, fmt: str = ".4g") -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def decide(claim: Claim, variant: str, profile: str, store: Store, record: bool = True) -> dict:
    """The claim's verdict before Holm, with each secondary check's in `secondary_checks`. `record`: lock the
    design (repro.designs); an exploratory judging (an amendment after the data) records nothing."""
    verdict = _decide(claim, variant, profile, store, record)
    if claim.secondary_checks:
        verdict["secondary_checks"] = [
            {**_decide(claim.model_copy(update={"check": c, "secondary_checks": []}), variant, profile, store, False),
             "secondary": i + 1} for i, c in enumerate(claim.secondary_checks)]
    return verdict


def _decide(claim: Claim, variant: str, profile: str, store: Store, record: bool) -> dict:
    check = claim.check
    base = {"claim": claim.id, "variant": variant, "profile": profile, "check": check.kind,
            "metric": check.metric, "arms": check.arms, "alpha": check.alpha, "margin": check.margin,
            "tolerance": check.tolerance, "value": check.value, "better": check.better, "top": check.top,
            "derived": check.derived, "bound": check.bound, "justification": check.justification,
            "also_reported": [r.model_dump() for r in check.also_reported]}
    try:
        twin = twin_precision(claim, variant, profile, store)  # the fp32 twin's runs where only those are stored
        results = collect(claim, variant, profile, store, precision=twin)
        # the first look is stored: from now on its design is locked (repro.designs)
        # (a claim of observed arms only has no profile, hence no design to lock)
        refused = lock(store.root, claim, variant, profile) if record and store is not None \
            and profile in claim.profiles else None
        if refused:
            raise Missing(refused)
        preconditions = []
        for pre in claim.preconditions:
            outcome = run_check(results, unpaired(pre) if any(map(claim.is_observed, pre.arms)) else pre)
            reused = reused_behind(claim, variant, profile, results, pre.arms)
            entry = {"check": pre.kind, "arms": pre.arms, "metric": pre.metric, "alpha": pre.alpha,
                     "justification": pre.justification, "held": outcome["decision"] == "supported",
                     "refuted": outcome["decision"] == "refuted",
                     **({"conditional_on": reused} if reused else {}),
                     **{k: getattr(pre, k) for k in ("bound", "derived", "margin", "value", "tolerance")
                        if getattr(pre, k) is not None},  # what it was held against, for the report's line
                     **{k: outcome[k] for k in ("p", "values", "diverged", "reason", "estimand", "estimate",
                                                "estimate_ci", "hypothesis", "test") if k in outcome}}
            preconditions.append(entry)
        design, waiting = None, {}
        if profile in claim.profiles and claim.profiles[profile].sequential is not None:
            results, design, waiting = looked_at(claim, variant, profile, store, results, twin)
        observed = any(map(claim.is_observed, check.arms))
        outcome = run_check(results, unpaired(check) if observed else check, design)
    except Missing as why:
        return {**base, "status": "NOT RUN", "reason": str(why), "p": math.nan, "preconditions": []}
    seeds = claim.profiles[profile].seeds_for(outcome["sequential"]["seeds_used"]) if design else \
        claim.profiles[profile].seeds if profile in claim.profiles else []
    reused = reused_behind(claim, variant, profile, results, check.arms)
    reused += [arm for p in preconditions for arm in p.get("conditional_on", []) if arm not in reused]
    if reused and outcome.get("decision") is not None and "reason" not in outcome:
        outcome["conditional_on"] = reused  # the check arms' own reused run, or the one run they all learn from
    external = describe_observed(claim, variant, [a for c in [check, *claim.preconditions] for a in c.arms])
    if external:  # values measured elsewhere: named with their provenance, and left out of the run facts below
        base["observed"] = external
        results = {arm: [r for r in rs if not r.get("observed")] for arm, rs in results.items()}
    from .cost import unconverged
    late = {arm: sum(unconverged(r) is not None for r in rs) for arm, rs in results.items()}
    if any(late.values()):  # by repro/cost.py's rule: still learning fast when the protocol stopped it
        base["unconverged"] = {arm: f"{n} of {len(results[arm])}" for arm, n in late.items() if n}
    verdict = {**base, **outcome, "seeds": seeds, "preconditions": preconditions,
               **({"waiting": waiting} if waiting else {}),
               "wall_s": sum(r["wall_s"] for rs in results.values() for r in rs),
               "run_keys": {arm: [r["key"] for r in rs] for arm, rs in results.items()},
               "devices": sorted({r["device"] for rs in results.values() for r in rs}),
               "used_precision": used_precision(results),
               **({"precision_twin": "its spec declares bf16; judged from its fp32 twin (every arm in fp32), "
                   "trained where bf16 is slow"} if twin else {}),
               "versions": sorted({f"torch {r['provenance'].get('torch')}, python {r['provenance'].get('python')}"
                                   for rs in results.values() for r in rs}),
               "commits": sorted({str(r["provenance"].get("git_commit")) for rs in results.values() for r in rs}),
               # the registration each compared run was trained under ("" before any): repro.registration;
               # the check's own runs apart, as only they decide it (preconditions gate it: judge_folder)
               "registrations": stamps([a for c in [check, *claim.preconditions] for a in c.arms], results),
               "check_registrations": stamps(check.arms, results)}
    comparable, why = claim.numbers_comparable(variant, profile)
    if check.against_source_number and not comparable:
        verdict["not_comparable"] = why
        verdict["next_look"] = None  # more seeds at this scale cannot make its numbers the source's
        if verdict["decision"] == "refuted":  # the profile could never have reached the source's number
            verdict["decision"], verdict["p_refute"] = "undecided", math.nan
            verdict["reason"] = (f"not comparable with the source at the {profile} profile ({why}): measured "
                                 f"{verdict['estimand']} = {_num(verdict['estimate'])} [{_num(verdict['estimate_ci'][0])}, "
                                 f"{_num(verdict['estimate_ci'][1])}] against the source's {_num(verdict['reference'])}"
                                 f"; at this scale a check against the source's own number cannot refute it")
    failed = [p for p in preconditions if not p["held"]]
    if failed:  # nothing was tested: never NOT REPRODUCED (in a registered family it counts at p = 1)
        verdict["next_look"] = None  # more seeds of the check's arms cannot mend a precondition
        verdict["status"] = "INCONCLUSIVE"
        # "failed" only where the data rule the precondition out; else it was only not shown to hold
        verdict["reason"] = ("precondition failed: " if all(p.get("refuted") for p in failed) else
                             "precondition not shown to hold: ") + " | ".join(_pre_text(p) for p in failed)
    return verdict


HOLM_POLICY = ("Holm across the family: REPRODUCED needs the claim's p, and NOT REPRODUCED the p against it, "
               "below alpha after Holm's correction over the family's tested claims (each side its own ordering): "
               "the chance of some wrong REPRODUCED in the family is at most alpha, of some wrong NOT REPRODUCED "
               "at most alpha, so of any wrong verdict at most 2 alpha")


def _holm_thresholds(pvalues: list[float], alpha: list[float]) -> list[float]:
    """Per p-value, the level Holm compares it with where it now ranks: alpha / (m - rank)."""
    finite = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    out = [math.nan] * len(pvalues)
    for rank, (_, i) in enumerate(finite):
        out[i] = alpha[i] / (len(finite) - rank)
    return out


def finalize(verdicts: list[dict], family: dict[tuple[str, str], str] | None = None,
             registered: set[str] | None = None) -> list[dict]:
    """Holm within each family (repro.family: (claim, variant) -> family name; default one family of the verdicts
    given), for reproductions and refutations alike, then map decisions to verdict names. A claim's secondary
    checks are members of its family beside it. `registered`: the registration's members found tested at some
    judging (Registration.tested): such a member not tested now (NOT RUN, precondition not held, diverged runs,
    no spread, deleted) counts at p = 1 on both sides, so no removal shrinks the family; a member never tested,
    and untested claims judged alone, are not in it. A
    verdict whose family is None is exploratory: its own alpha, uncorrected. seeds_to_decide is recomputed at
    the Holm threshold the claim faces on each side."""
    names = [(family or {}).get((v["claim"], v["variant"]), DEFAULT_FAMILY) for v in verdicts]
    entries = [(e, n) for v, n in zip(verdicts, names) for e in [v, *v.get("secondary_checks", [])]]
    for name in dict.fromkeys(names):
        if name is None:
            for e, n in entries:
                if n is None:
                    _holm_within([e], None, False)
        else:
            _holm_within([e for e, n in entries if n == name], name, registered)
    return verdicts


def member_name(v: dict) -> str:
    return f"{v['claim']}[{v['variant']}]" + (f" secondary {v['secondary']}" if v.get("secondary") else "")


def _is_tested(v: dict) -> bool:
    """The claim's p or its p against (a refutation with one pair of no spread has only the latter)."""
    return "status" not in v and not (_nan(v.get("p")) and _nan(v.get("p_refute")))


def _holm_within(verdicts: list[dict], name: str | None, registered: set[str] | None) -> None:
    tested = [_is_tested(v) for v in verdicts]
    counted = [t or member_name(v) in (registered or ()) for v, t in zip(verdicts, tested)]
    # in a registered family an untested member once tested counts at p = 1 (so does a side a test left without
    # a p); a member never tested is not in the family (NaN: Holm skips it), nor an untested claim judged alone
    fill = [1.0 if c and registered is not None else math.nan for c in counted]
    p_support = [v["p"] if t and not _nan(v.get("p")) else f for v, t, f in zip(verdicts, tested, fill)]
    p_refute = [v["p_refute"] if t and not _nan(v.get("p_refute")) else f for v, t, f in zip(verdicts, tested, fill)]
    adjusted, adjusted_refute = holm(p_support), holm(p_refute)
    alphas = [v.get("alpha", math.nan) for v in verdicts]
    level, level_refute = _holm_thresholds(p_support, alphas), _holm_thresholds(p_refute, alphas)
    members = [member_name(v) for v, c in zip(verdicts, counted) if c]
    what = "members" if registered is not None else "tested claims"
    for i, v in enumerate(verdicts):
        rerun, widen = v.pop("_rerun", None), v.pop("_widen", None)
        v["p_holm"], v["p_refute_holm"] = adjusted[i], adjusted_refute[i]
        v["family"], v["holm_family"] = name, members
        v["holm_policy"] = HOLM_POLICY if name is not None else EXPLORATORY_POLICY
        if "status" in v:
            continue
        if rerun is not None and not math.isnan(level[i]):
            v["seeds_to_decide"] = _seeds_at(rerun, level[i], level_refute[i])
        decision, why = v["decision"], ""
        if decision == "supported" and not adjusted[i] < v["alpha"]:
            decision = "undecided"  # significant alone, not after correcting for the other claims
            why = f"; p < alpha alone, but not after Holm across {len(members)} {what}"
        if decision == "refuted" and not adjusted_refute[i] < v["alpha"]:
            decision = "undecided"
            why = f"; ruled out at alpha alone, but not after Holm across {len(members)} {what}"
        if why and (rerun or widen):  # the interval at the level Holm held it to: it spans the decision
            at = level[i] if v["decision"] == "supported" else level_refute[i]
            # a sequential claim: its last look's boundary, scaled as Holm scales alpha (p_seq < h <=> p_l < a_l h / alpha)
            _holm_interval(v, rerun or widen[:2], at * widen[2] if widen else at)
        v["status"] = DECISION_TO_STATUS[decision]
        if "reason" not in v:
            v["reason"] = explain(v) + why


EXPLORATORY_POLICY = "exploratory: tested at its own alpha, in no family, not corrected for multiplicity"


def _holm_interval(v: dict, rerun, level: float) -> None:
    """Show the interval at the Holm level a claim failed to pass (the unadjusted one, which excludes the
    reference, is kept as estimate_ci_alone): printed beside an INCONCLUSIVE after Holm, it spans the decision."""
    values, check = rerun
    try:
        widened = CHECKS.get(check.kind)(values, check.model_copy(update={"alpha": level}))
    except ValueError:
        return
    v["estimate_ci_alone"], v["ci_level_alone"] = v["estimate_ci"], v.get("ci_level")
    v["estimate_ci"], v["ci_level"] = widened["estimate_ci"], widened.get("ci_level") or 1 - 2 * level


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def families(verdicts: list[dict]) -> dict[str, list[str]]:
    """Family name -> its tested members, as finalize named them (what the report and pytest state once)."""
    return {v["family"]: v["holm_family"] for v in verdicts if v.get("family") is not None}


def judge_folder(folder, claims: dict[str, Claim], profile: str, store: Store, registration=None) -> list[dict]:
    """Every member of the profile's registration (repro.registration), judged under its registered rule and
    corrected within its registered family: what the report, `pytest -m claims [-k]`, `repro judge` and
    `--until-decided` all read, so a selection, an edit or a deletion never moves a confirmatory verdict.
    A spec that differs from its registration gets `amendment` (the edited rule's verdict, exploratory); one whose
    arms were edited is judged from the registered copy of its spec; REPRO_PRECISION does not choose the runs; a
    committed result deleted or edited since is read as committed (repro.registration.changed_results); a claim
    not registered before its data is INCONCLUSIVE with its `exploratory` verdict; a registered claim deleted or
    NOT RUN stays in its family at p = 1. `registration`: an already loaded one (default: ensure() it)."""
    from . import registration as reg_
    reg = registration or reg_.ensure(folder, claims, profile, store.root)
    verdicts, family, members = [], {}, reg.members
    # committed results deleted or edited since are read as committed (Store.find), and said on every verdict
    store.committed, store.restored = reg_.changed_results(store.root, profile), {}
    if reg.waves is None:  # tampered, and nothing to recover: no rule to judge under
        for c in claims.values():
            for variant in c.variants if profile in c.profiles or not c.profiles else []:
                verdicts.append({**_stub(c.id, variant, profile), "status": "NOT RUN",
                                 "reason": f"registration tampered: {reg.note}"})
        return _stamped(finalize(verdicts, None), reg)
    copies = {}  # claim id -> its spec as registered (one per claim, whose variants are several members)
    for key, m in members.items():
        if m["claim"] not in copies:
            copies[m["claim"]] = reg.claim(m["claim"], folder)
        claim, gone, registered, gated = claims.get(m["claim"]), "", copies[m["claim"]], None
        if claim is None or m["variant"] not in claim.variants:  # judged from the spec as it was registered
            claim = registered
            gone = "[its spec (or variant) is no longer in the claims folder: judged from the copy registered] "
        if claim is None or m["variant"] not in claim.variants:
            v = {**_stub(m["claim"], m["variant"], profile, m["rule"]), "status": "NOT RUN",
                 "reason": "registered, but its spec (or variant) is no longer in the claims folder, nor readable "
                           "from the registration: it stays in its family at p = 1"}
        else:
            # arms edited since the registration: the registered runs are judged, the edited ones are the amendment
            edited = reg_.runs_edited(registered, claim, m["variant"], profile, m["rule"]["seeds"])
            with as_declared():  # the registered runs' precision, whatever REPRO_PRECISION says (shown below)
                v = decide_guarded(reg_.as_registered(registered if edited else claim, m["variant"], m["rule"],
                                                      profile), m["variant"], profile, store)
            changed = reg_.changes(m["rule"], reg_.rule_of(claim, m["variant"], profile)) + edited
            if override() is not None and v.get("used_precision") != override():  # it would judge other runs
                changed.append(f"REPRO_PRECISION={override()} (every arm's precision, set when judging)")
            code = [k.removeprefix("code.") for k in changed if k.startswith("code.")]
            if code:  # runs of edited plugin code are not the registered experiment; the registered runs are stale
                v = {**_stub(m["claim"], m["variant"], profile, m["rule"]), "status": "NOT RUN",
                     "reason": f"its plugin code ({', '.join(code)}) changed since the registration: runs of the new "
                               "code are not the registered experiment, and the registered code's runs are stale "
                               "(restore the file from git to judge them); it stays in its family at p = 1"}
            if changed:
                v["amendment"] = _exploratory(claim, m["variant"], profile, store,
                                              "amendment after data: " + ", ".join(changed) + " edited since the "
                                              f"registration (wave {m['wave']})")
            late, gated = _data_age(reg, m, v)
            if late and v.get("status") != "NOT RUN":
                v = _unconfirmed(v, f"no confirmatory verdict: {late}", claim, m["variant"], profile, store)
        if gone:
            v["spec_removed"] = gone  # said in front of its reason once finalize has written it
        v["registered"] = {"wave": m["wave"], "state": reg.state, "after_results": bool(m.get("after_results")),
                           **({"gated": gated} if gated and v.get("status") != "NOT RUN" else {})}
        family[(m["claim"], m["variant"])] = m["family"] + (f" (wave {m['wave']})" if m["wave"] > 1 else "")
        verdicts.append(v)
    for c in claims.values():  # added after the registration: exploratory until a wave registers them
        for variant in c.variants if (profile in c.profiles or not c.profiles) else []:
            if reg_.member_key(c.id, variant) not in members:
                v = decide_guarded(c, variant, profile, store, record=False)
                v = v if v.get("status") == "NOT RUN" else _unconfirmed(
                    v, "not registered before its data (`repro register` before a claim's first result)",
                    c, variant, profile, store)
                family[(c.id, variant)] = None
                verdicts.append(v)
    # a member counts in its family once it has been tested, and from then on whatever befalls it (p = 1)
    entries = [e for v in verdicts if family.get((v["claim"], v["variant"])) is not None
               for e in [v, *v.get("secondary_checks", [])]]
    reg_.record_tested(reg, {member_name(e) for e in entries if _is_tested(e)})
    return _stamped(finalize(verdicts, family, registered=reg.tested), reg, store)


def _data_age(reg, member: dict, v: dict) -> tuple[str | None, str | None]:
    """Why the member's verdict cannot be confirmatory (repro.registration.Registration.data_age), judged on the runs
    that decide it: those its check and its secondary checks compare. A precondition's own runs only gate it (a
    failed one leaves the member untested, never decided), so runs seen before the rule, there alone, are said
    (the second value) but do not make the verdict exploratory: the rule was still fixed before the data it tests."""
    decisive = [v, *v.get("secondary_checks", [])]
    arms = {a for e in decisive for a in e.get("arms", [])}
    keys = lambda among: [k for e in decisive for arm, ks in e.get("run_keys", {}).items()  # noqa: E731
                          if among(arm) for k in ks]
    late = reg.data_age(member, sorted({s for e in decisive for s in e.get("check_registrations", [])}),
                        keys(arms.__contains__))
    gates = sorted({a for c in v.get("preconditions", []) for a in c["arms"]} - arms)
    compared = arms.union(gates)
    older = not late and gates and reg.data_age(member, v.get("registrations", []), keys(compared.__contains__))
    return late, (f"the runs only its preconditions compare ({', '.join(gates)}) predate its rule: {older}. They "
                  "only gate the verdict; every run its checks compare was trained under the rule") if older else None


def _stub(claim_id: str, variant: str, profile: str, rule: dict | None = None) -> dict:
    check = (rule or {}).get("check", {})
    return {"claim": claim_id, "variant": variant, "profile": profile, "check": check.get("kind"),
            "metric": check.get("metric"), "arms": check.get("arms", []), "alpha": check.get("alpha", math.nan),
            "margin": check.get("margin"), "justification": check.get("justification", ""), "p": math.nan,
            "preconditions": []}


def _exploratory(claim: Claim, variant: str, profile: str, store: Store, why: str) -> dict:
    """The spec as it is now, judged at its own alpha in no family: a labelled, exploratory verdict."""
    v, = finalize([decide_guarded(claim, variant, profile, store, record=False)], {(claim.id, variant): None})
    status = v["status"] if v["status"] in ("NOT RUN", "INCONCLUSIVE") else f"exploratory {v['status']}"
    return {"why": why, "status": status, "label": "exploratory (not confirmatory, not in any family)",
            "reason": v.get("reason", ""), "p": v.get("p"), "alpha": v.get("alpha"),
            "estimate_ci": v.get("estimate_ci"), "line": f"{why}: {status}: {v.get('reason', '')}"}


def _unconfirmed(v: dict, why: str, claim: Claim, variant: str, profile: str, store: Store) -> dict:
    """A member without a confirmatory verdict: INCONCLUSIVE (untested: p = 1 in its family), the current spec's
    verdict beside it as exploratory."""
    base = {k: v[k] for k in ("claim", "variant", "profile", "check", "metric", "arms", "alpha", "margin",
                              "justification", "registrations") if k in v}
    return {**base, "status": "INCONCLUSIVE", "p": math.nan, "preconditions": [], "reason": why,
            "exploratory": _exploratory(claim, variant, profile, store, why)}


def _stamped(verdicts: list[dict], reg, store: Store | None = None) -> list[dict]:
    """Each verdict names the registration it was judged under; a result stamped by a wave the registration
    lacks is tampering (a wave deleted or edited), said on every verdict of the profile, as are committed results
    read as committed because they were deleted or edited since (Store.restored)."""
    stamps = {s for v in verdicts for s in v.get("registrations", []) if s.startswith(f"{reg.profile}:")}
    unknown = sorted(s for s in stamps if reg.wave_of(s) is None)
    if unknown and reg.waves is not None:
        reg.state = "tampered"
        reg.note = (reg.note + "; " if reg.note else "") + (
            f"results carry registration {unknown[0]}, which {reg.path} lacks (a wave deleted or edited)")
    for v in verdicts:
        v["reason"] = v.pop("spec_removed", "") + v.get("reason", "")
        v["registration"] = reg.describe()
        if reg.state == "tampered":
            v["reason"] = f"[registration tampered: {reg.note}] {v.get('reason', '')}"
    restored = sorted((store.restored if store is not None else {}).items())
    if restored:
        path, how = restored[0]
        where = public_path(path)
        note = (f"results changed after git committed them, judged as first committed: {len(restored)} file(s), e.g. "
                f"{where} ({how}); restore them from git")
        for v in verdicts:
            v["results_changed"] = [public_path(p) for p, _ in restored]
            v["reason"] = f"[results tampered: {note}] {v.get('reason', '')}"
    return verdicts


def _seeds_at(rerun, alpha_support: float, alpha_refute: float) -> int | None:
    """Seeds per arm that decide the observed effect with 80% power at the levels the claim faces: the
    support route at its Holm threshold, the refuting route at its own (the check's own design for each)."""
    values, check = rerun
    support = CHECKS.get(check.kind)(values, check.model_copy(update={"alpha": alpha_support}))["seeds_support"]
    refute = None
    if not math.isnan(alpha_refute):
        refute = CHECKS.get(check.kind)(values, check.model_copy(update={"alpha": alpha_refute}))["seeds_refute"]
    routes = [n for n in (support, refute) if n is not None]
    return min(routes) if routes else None


def explain(v: dict) -> str:
    """One line: the estimate and its interval, the claim, raw and Holm p, the companion test and its floor,
    and for INCONCLUSIVE about how many seeds would decide it."""
    if "estimand" not in v:
        return v.get("reason", "")
    lo, hi = v["estimate_ci"]
    level = v.get("ci_level") or 1 - 2 * v["alpha"]  # best_of with top k: computed at alpha / k
    text = (f"{v['estimand']} on {v['metric']} = {_num(v['estimate'])} [{_num(lo)}, {_num(hi)}] "
            f"({_percent(level)}% CI); claim {v['hypothesis']}: {v['test']} "
            f"p = {_num(v['p'], '.3g')} (Holm {_num(v.get('p_holm'), '.3g')})")
    if v.get("conditional_on"):
        text += _conditional_text(v)
    if v.get("no_spread") and v.get("decision") != "refuted":
        text += ("; no spread between the seeds (they agree exactly): no test is valid, so it is undecided "
                 "whatever the means say")
    if v.get("status") == "NOT REPRODUCED" or (v.get("decision") == "refuted" and v.get("p_refute") is not None):
        text += (f"; p against the claim {_num(v.get('p_refute'), '.3g')} "
                 f"(Holm {_num(v.get('p_refute_holm'), '.3g')})")
    companion = v.get("companion") or {}
    if companion.get("p") is not None and not math.isnan(companion["p"]):
        floor = companion["p_floor"]
        text += (f"; {companion['test']} p = {_num(companion['p'], '.3g')} (floor {_num(floor, '.3g')}"
                 + (", cannot reach alpha with these seeds)" if floor >= v["alpha"] else ")"))
    if v.get("unconverged"):
        text += ("; warning: runs that ended unconverged (training loss still fell over 5% in their last epoch): "
                 + ", ".join(f"{arm} {n}" for arm, n in v["unconverged"].items()))
    if v.get("observed"):
        text += "; external evidence (values measured elsewhere, not trained here): " + "; ".join(
            f"{arm}: {o['n']} values of {o['metric']} ({o['units']}) from {o['provenance']}"
            for arm, o in v["observed"].items())
    if v.get("sequential"):
        return text + _sequential_text(v)
    if v.get("status") == "INCONCLUSIVE" and not v.get("no_spread"):
        seeds = v.get("seeds_to_decide")
        text += (f"; about {seeds} seeds per arm would decide it at the observed effect" if seeds else
                 "; at the observed effect no practical number of seeds would decide it (it sits on the boundary)")
    return text


def decide_guarded(claim: Claim, variant: str, profile: str, store: Store, record: bool = True) -> dict:
    """decide(), but an unexpected failure on one claim (a bug, or a stored file no check foresaw) makes
    that claim NOT RUN with the error, never the whole session: every other claim is still decided."""
    try:
        return decide(claim, variant, profile, store, record)
    except Exception as err:  # noqa: BLE001 -- reported in the verdict, not swallowed
        return {"claim": claim.id, "variant": variant, "profile": profile, "check": claim.check.kind,
                "metric": claim.check.metric, "arms": claim.check.arms, "alpha": claim.check.alpha,
                "margin": claim.check.margin, "justification": claim.check.justification, "status": "NOT RUN",
                "reason": f"could not be decided: {type(err).__name__}: {err}", "p": math.nan, "preconditions": []}


def decide_all(claims: dict[str, Claim], profile: str, store: Store) -> list[dict]:
    return finalize([decide_guarded(c, variant, profile, store) for c in claims.values() for variant in c.variants])
