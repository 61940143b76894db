"""Check kinds as pure functions on numbers: no torch, no files.

A check takes `values` (arm name -> one number per seed, in the same seed order for every arm) and
the spec's `Check`, and returns a dict:

  test, statistic, df, p   the parametric test that decides (one-sided t; TOST; intersection-union max)
  hypothesis               what "supported" means, in words (e.g. "distilled - small < 0")
  estimand, estimate,      what is estimated, its value and its (1 - 2 alpha) confidence interval
  estimate_ci
  reference, ci_level       the claim's reference point (0, the source's value, the bound); 1 - 2 alpha
  diff, ci                 the estimate minus the reference; the report prints these as "difference"
  effect_size              standardised: the estimate's distance from that reference over the per-seed sd
  decision                 "supported", "refuted" or "undecided" (verdict.py names them REPRODUCED ...)
  p_refute                 the p-value of the refuting test (the one that can say NOT REPRODUCED)
  seeds_to_decide          seeds per arm with which a true effect of the observed size reaches a decision
                           (either way) with 80% power; None when no practical number would
  companion                a distribution-free test reported beside the t test, with its p-value floor:
                           an exact sign-flip permutation test on the per-seed differences (paired), or an
                           exact two-sample permutation test (unpaired); seeded Monte Carlo when too many
  pairs                    every comparison, for kinds that make several (the decision is their
                           intersection-union: p is the largest p)

Interval/p duality: the interval's bound on the claim's side is the one-sided (1 - alpha) bound, so
"p < alpha" and "the interval excludes the null (0, the tolerance band's edge, the bound)" agree.

Refutation: "refuted" needs the opposite one-sided test at alpha (alpha / number of comparisons when
any one comparison refutes). For greater/less/best_of an optional `margin` (the smallest effect worth
claiming) lets an effect confidently below it refute; without one, only a confidently wrong sign does.

Vectorised: every value list may instead be a 2-D array (simulations x seeds); all fields then come
back as arrays over the simulations. The calibration tests (tests/test_calibration.py) call the
registered checks that way, so they test exactly the code that decides the claims.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..registry import CHECKS
from .small_sample import (SPREAD_TOL, W_PAIRED, _difference, _half, _hsu_guard, _integral, _p_above, _quantile,
                           _rounding_var, _scale, _seeds_all, _seeds_needed, _var, hsu_df, sign_flip, skew_factor, skew_share,
                           two_sample_permutation, welch_skew)

# --- specs: what each kind needs (read by repro.spec.Check's validators) --------------------------

def needs(*required: str, optional: tuple[str, ...] = (), arms: tuple[int, int | None] = (2, 2)):
    """Declare a check kind's required and optional Check keys and how many arms it compares."""
    def mark(fn):
        fn.needs, fn.optional, fn.arm_count = tuple(required), tuple(optional), arms
        return fn
    return mark


@dataclass(frozen=True)
class Derived:
    """numerator / denominator, each a linear combination of the arms' means (plus a constant below)."""

    roles: tuple[str, ...]  # what each arm (in the check's order) stands for
    numerator: tuple[float, ...]
    denominator: tuple[float, ...]
    constant: float  # added to the denominator
    formula: str


DERIVED = {
    "mean": Derived(("arm",), (1,), (0,), 1.0, "the arm's mean (the default for one arm)"),
    "recovered_fraction": Derived(
        ("teacher", "small", "distilled"), (0, 1, -1), (-1, 1, 0), 0.0,
        "(small - distilled) / (small - teacher): the share of the small-to-teacher gap that distillation "
        "closes; the same formula serves errors (lower is better) and accuracy"),
    "difference": Derived(("a", "b"), (1, -1), (0, 0), 1.0, "a - b"),
    "relative_change": Derived(("new", "old"), (1, -1), (0, 1), 0.0, "(new - old) / old"),
}
KEY_HELP = {
    "margin": "the largest difference, in the metric's units, still called equivalent (equivalent), or the "
              "smallest effect worth claiming (greater/less/best_of: an effect confidently below it refutes)",
    "value": "the source's number for each arm (one number, or one per arm)",
    "tolerance": "how far from the source's value still counts as matching, in the metric's units",
    "better": "'lower' or 'higher': which direction of the metric is better",
    "top": "best_of: the best (by mean) of the first `top` arms must beat every other arm (default 1; "
           "Bonferroni x top for the choice)",
    "derived": "a derived quantity by name: " + ", ".join(DERIVED) + " (default: mean, for one arm)",
    "bound": "the value the derived quantity must reach or exceed",
    "paired": "pair the arms by seed (default: paired when every arm has the same number of seeds)",
}


def _companion_max(parts: list[dict]) -> dict:
    """Intersection-union of companion tests: the largest p; the floor is the largest floor."""
    return {"test": parts[0]["test"] + (f" (largest of {len(parts)})" if len(parts) > 1 else ""),
            "p": np.max(np.stack([np.asarray(c["p"], float) for c in parts], -1), -1),
            "p_floor": max(c["p_floor"] for c in parts), "exact": all(c["exact"] for c in parts),
            "n_permutations": min(c["n_permutations"] for c in parts)}


def _hsu_note(paired: bool, *size_sets) -> str:
    """Added to a Welch test's name where some comparison's p is also Hsu's (small_sample._hsu_guard); "" if none."""
    dfs = sorted({df for sizes in size_sets if not paired and (df := hsu_df(sizes)) is not None})
    return f"p at least Hsu's, t on {'/'.join(f'{d:g}' for d in dfs)} df" if dfs else ""


def _is_paired(values: dict, check) -> bool:
    lengths = {np.shape(values[arm])[-1] for arm in check.arms}
    if check.paired is None:
        return len(lengths) == 1
    if check.paired and len(lengths) > 1:
        raise ValueError(f"paired: the arms have different numbers of seeds {sorted(lengths)}")
    return check.paired


def _arms(values: dict, check) -> tuple[list[np.ndarray], bool]:
    xs = [np.asarray(values[arm], float) for arm in check.arms]
    return xs, xs[0].ndim > 1


# --- one comparison ("part"): arrays of p, p_refute, interval, ... ----------------------------------

def _directional_part(a, b, paired, sign, margin, alpha, label) -> dict:
    """Claim sign * (a - b) > 0; refuted when sign * (a - b) is confidently below `margin`."""
    r = _difference(a, b, paired)
    e = sign * r["diff"]
    p, t = _p_above(e, r["se"], r["df"], r["no_spread"], r["guard"])
    p_ref, _ = _p_above(margin - e, r["se"], r["df"], r["no_spread"], r["guard"])
    half = _half(alpha, r["se"], r["df"], r["guard"])
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = r["diff"] / r["sd_effect"]
    comp = sign_flip(sign * (a - b)) if paired else two_sample_permutation(sign * a, sign * b)
    return {"label": label, "p": p, "p_refute": p_ref, "statistic": sign * t, "df": r["df"],
            "estimate": r["diff"], "estimate_ci": (r["diff"] - half, r["diff"] + half), "reference": 0.0,
            "effect_size": effect, "se": r["se"], "companion": comp, "no_spread": r["no_spread"],
            "sides": [e], "sd_unit": r["sd_unit"], "welch": not paired, "hedge": r["skew_share"],
            "skew_share": r["skew_share"],
            "seeds_support": _seeds_needed(e, r["sd_unit"], alpha, not paired, hedge=r["skew_share"]),
            "seeds_refute": _seeds_needed(margin - e, r["sd_unit"], alpha, not paired, hedge=r["skew_share"])}


def _tost_part(estimate, se, df, sd_unit, margin, alpha, alpha_refute, welch, label, reference, companion,
               no_spread, hedge: float = W_PAIRED, guard=None) -> dict:
    """TOST: |estimate - reference| < margin. estimate has standard error se with df.

    Refuting it (|true - reference| >= margin) is the union of two one-sided tests, e > margin or
    e < -margin: each at half the level (p_refute = 2 x the smaller p), so that when the margin is small
    against the standard error the two sides together still refute a true claim at most alpha of the
    time (each side at alpha would reach 2 alpha). Dual: refuted iff the two-sided (1 - alpha) interval
    lies outside the band. `guard`: Welch's second bound at unequal sizes (small_sample._hsu_guard)."""
    e = estimate - reference
    p_low, t_low = _p_above(e + margin, se, df, no_spread, guard)  # H1: e > -margin
    p_upp, t_upp = _p_above(margin - e, se, df, no_spread, guard)  # H1: e < +margin
    p = np.maximum(p_low, p_upp)
    p_out = np.minimum(1.0, 2 * np.fmin(_p_above(e - margin, se, df, no_spread, guard)[0],
                                        _p_above(-margin - e, se, df, no_spread, guard)[0]))
    half = _half(alpha, se, df, guard)
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = e / (sd_unit / math.sqrt(2) if welch else sd_unit)
    distance = margin - np.abs(e)
    return {"label": label, "p": p, "p_refute": p_out, "statistic": np.where(p_low >= p_upp, t_low, -t_upp),
            "df": df, "estimate": estimate, "estimate_ci": (estimate - half, estimate + half),
            "reference": reference, "effect_size": effect, "se": se, "companion": companion, "no_spread": no_spread,
            "sides": [margin - e, margin + e], "sd_unit": sd_unit, "welch": welch, "hedge": hedge,  # both must pass
            "skew_share": hedge,
            "seeds_support": _seeds_needed(distance, sd_unit, alpha, welch, hedge=hedge),
            "seeds_refute": _seeds_needed(-distance, sd_unit, alpha_refute / 2, welch, hedge=hedge)}


def _combine(parts: list[dict], alpha: float, batch: bool, **fields) -> dict:
    """Intersection-union over comparisons: supported when every comparison is (p = the largest p);
    refuted when any one refutes at alpha / (number of comparisons). The reported numbers are the
    binding comparison's (largest p)."""
    k = len(parts)
    shape = np.shape(parts[0]["p"])

    def stack(get):
        return np.stack([np.broadcast_to(np.asarray(get(part), float), shape) for part in parts], -1)

    p_all = stack(lambda q: q["p"])
    p = np.max(p_all, -1)
    supported = p < alpha
    refuted = np.any(stack(lambda q: q["p_refute"]) < alpha / k, -1) & ~supported
    binding = np.argmax(np.where(np.isnan(p_all), np.inf, p_all), -1)[..., None]

    def pick(get):
        return np.take_along_axis(stack(get), binding, -1)[..., 0]

    estimate = pick(lambda q: q["estimate"])
    reference = pick(lambda q: q["reference"])
    lo, hi = pick(lambda q: q["estimate_ci"][0]), pick(lambda q: q["estimate_ci"][1])
    # support: every one-sided test of every comparison must pass together; refute: any one comparison
    no_spread = np.any(np.stack([np.broadcast_to(q["no_spread"], shape) for q in parts], -1), -1)
    support_route = _seeds_all([side for q in parts for side in q["sides"]],
                               [q["sd_unit"] for q in parts for _ in q["sides"]], alpha, parts[0]["welch"],
                               hedge=parts[0]["hedge"])
    support_route = np.where(no_spread, np.nan, support_route)
    refute_route = np.where(no_spread, np.nan, np.fmin.reduce(stack(lambda q: q["seeds_refute"]), -1))
    labels = np.array([q["label"] for q in parts])
    out = {
        **fields,
        "ci_level": 1 - 2 * alpha, "reference": reference,
        "estimand": labels[binding[..., 0]],
        "estimate": estimate, "estimate_ci": (lo, hi),
        "diff": estimate - reference, "ci": (lo - reference, hi - reference),
        "statistic": pick(lambda q: q["statistic"]), "df": pick(lambda q: q["df"]), "p": p,
        # any one comparison refutes: a pair without spread (NaN) cannot, the others still can
        "p_refute": np.fmin.reduce(stack(lambda q: q["p_refute"]) * k, -1).clip(max=1.0),
        "effect_size": pick(lambda q: q["effect_size"]),
        "decision": np.where(supported, "supported", np.where(refuted, "refuted", "undecided")),
        "seeds_to_decide": np.fmin(support_route, refute_route),
        "seeds_support": support_route, "seeds_refute": refute_route,
        "companion": _companion_max([q["companion"] for q in parts]),
        "no_spread": no_spread, "skew_share": float(np.max([np.max(q["skew_share"]) for q in parts])),
    }
    if k > 1:
        out["pairs"] = [{"comparison": q["label"], "p": q["p"], "p_refute": q["p_refute"],
                         "statistic": q["statistic"], "df": q["df"], "estimate": q["estimate"],
                         "ci": q["estimate_ci"], "companion_p": q["companion"]["p"]} for q in parts]
    return _finish(out, batch)


def _finish(out: dict, batch: bool) -> dict:
    """Scalars for one data set (floats, str, int seeds or None); arrays for a batch of simulations."""
    if batch:
        return out

    def plain(v):
        if isinstance(v, dict):
            return {key: plain(x) for key, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(plain(x) for x in v)
        if isinstance(v, np.ndarray) or isinstance(v, np.generic):
            v = v.item()
        return v

    out = plain(out)
    for key in ("seeds_to_decide", "seeds_support", "seeds_refute"):
        seeds = out.get(key)
        out[key] = None if seeds is None or math.isnan(seeds) else int(seeds)
    return out


# --- the check kinds -------------------------------------------------------------------------------

def _directional(values, check, sign: int, word: str) -> dict:
    (a, b, *_), batch = _arms(values, check)
    paired = _is_paired(values, check)
    x, y = check.arms[:2]
    part = _directional_part(a, b, paired, sign, check.margin or 0.0, check.alpha, f"{x} - {y}")
    note = _hsu_note(paired, [a.shape[-1], b.shape[-1]])
    return _combine([part], check.alpha, batch, test=("paired t" if paired else "Welch t") + f" (one-sided{'; ' + note if note else ''})",
                    paired=paired, hypothesis=f"{x} {word} {y}" + (
                        f" (an effect confidently below {check.margin} refutes)" if check.margin else ""))


@CHECKS.register("greater")
@needs(optional=("margin", "paired"))
def greater(values, check) -> dict:
    """arms[0] > arms[1]: one-sided paired t (arms share seeds) or Welch t; companion: sign-flip or
    two-sample permutation test. Effect size: difference over the sd of the per-seed differences (paired)
    or the pooled sd."""
    return _directional(values, check, +1, ">")


@CHECKS.register("less")
@needs(optional=("margin", "paired"))
def less(values, check) -> dict:
    """arms[0] < arms[1]: as `greater`, the other way round."""
    return _directional(values, check, -1, "<")


@CHECKS.register("equivalent")
@needs("margin", optional=("paired",), arms=(2, None))
def equivalent(values, check) -> dict:
    """Every pair of arms within +-margin: TOST per pair (paired t or Welch), intersection-union over
    pairs; refuted when some pair is confidently further apart than the margin (at alpha / pairs).
    Companion: TOST by permutation (sign flips of d -+ margin; or shifted two-sample permutation)."""
    xs, batch = _arms(values, check)
    paired = _is_paired(values, check)
    m, alpha = check.margin, check.alpha
    pairs = list(itertools.combinations(range(len(xs)), 2))
    parts = []
    for i, j in pairs:
        a, b = xs[i], xs[j]
        r = _difference(a, b, paired)
        if paired:
            comp = _companion_max([sign_flip(a - b + m), sign_flip(m - (a - b))])
        else:
            comp = _companion_max([two_sample_permutation(a + m, b), two_sample_permutation(b, a - m)])
        comp["test"] = "TOST by " + comp["test"].split(" (largest")[0]
        parts.append(_tost_part(r["diff"], r["se"], r["df"], r["sd_unit"], m, alpha, alpha / len(pairs),
                                not paired, f"{check.arms[i]} - {check.arms[j]}", 0.0, comp, r["no_spread"],
                                hedge=r["skew_share"], guard=r["guard"]))
    note = _hsu_note(paired, *[[xs[i].shape[-1], xs[j].shape[-1]] for i, j in pairs])
    test = ("TOST paired t" if paired else "TOST Welch t") + (f" ({note})" if note else "")
    return _combine(parts, alpha, batch, test=test, paired=paired,
                    hypothesis=f"|difference| < {m} for every pair of {', '.join(check.arms)}")


@CHECKS.register("matches")
@needs("value", "tolerance", arms=(1, None))
def matches(values, check) -> dict:
    """Each arm's mean within +-tolerance of the source's value: one-sample TOST (statsmodels
    ttost_mean); several arms: intersection-union. Companion: TOST by sign flips about the band's edges."""
    xs, batch = _arms(values, check)
    targets = check.value if isinstance(check.value, list) else [check.value] * len(xs)
    tol, alpha = check.tolerance, check.alpha
    parts = []
    for arm, x, target in zip(check.arms, xs, targets):
        n = x.shape[-1]
        raw = _var(x)
        sd = np.sqrt(raw + _rounding_var(x))
        comp = _companion_max([sign_flip(x - (target - tol)), sign_flip((target + tol) - x)])
        comp["test"] = "TOST by sign-flip permutation" + ("" if comp["exact"] else " (Monte Carlo)")
        # one arm's values: the seed's effect plus the arm's own noise (skew share 1/sqrt(2), as a paired difference)
        parts.append(_tost_part(x.mean(-1), sd / math.sqrt(n) * skew_factor(n), np.full(sd.shape, n - 1.0), sd, tol,
                                alpha, alpha / len(xs), False, f"mean({arm})", float(target), comp,
                                ~(raw > (SPREAD_TOL * _scale(x)) ** 2), hedge=W_PAIRED))
    return _combine(parts, alpha, batch, test="TOST one-sample t", paired=False,
                    hypothesis=" and ".join(f"|mean({arm}) - {t:g}| < {tol:g}" for arm, t in zip(check.arms, targets)))


@CHECKS.register("best_of")
@needs("better", optional=("top", "margin", "paired"), arms=(2, None))
def best_of(values, check) -> dict:
    """The first arm better than every other arm (`better`: lower or higher): one-sided paired t / Welch
    per pair, intersection-union (p = the largest pairwise p; no multiplicity penalty, since all must
    hold). With `top: k`, the best by mean of the first k arms is the one tested, and its p is multiplied
    by k (Bonferroni for the choice; valid whichever way the choice falls). Refuted when some pair is
    confidently the wrong way round (or within `margin`), at alpha / pairs. Companion: the pairwise
    permutation tests' largest p (times k)."""
    xs, batch = _arms(values, check)
    paired = _is_paired(values, check)
    top = check.top or 1
    sign, word = (1, ">") if check.better == "higher" else (-1, "<")
    others = range(top, len(xs))
    results = []
    for lead in range(top):
        parts = [_directional_part(xs[lead], xs[j], paired, sign, check.margin or 0.0, check.alpha / top,
                                   f"{check.arms[lead]} - {check.arms[j]}") for j in others]
        results.append(_combine(parts, check.alpha / top, True, paired=paired))
    rest = ", ".join(check.arms[top:])
    note = _hsu_note(paired, *[[xs[i].shape[-1], xs[j].shape[-1]] for i in range(top) for j in others])
    test = ("paired t" if paired else "Welch t") + f" (one-sided, largest of {len(xs) - top}{'; ' + note if note else ''})"
    if top == 1:
        out = results[0]
        hypothesis = f"{check.arms[0]} {word} each of {rest} ({check.better} is better)"
    else:  # the leader with the best mean; every field from its comparisons, p and the floor times top
        means = np.stack([x.mean(-1) for x in xs[:top]], -1)
        chosen = np.argmax(sign * means, -1)
        out = {key: _choose([r[key] for r in results], chosen) for key in results[0] if key != "pairs"}
        out["pairs"] = [{"comparison": np.array([f"{check.arms[lead]} - {check.arms[j]}" for lead in range(top)])[chosen],
                         **{key: _choose([r["pairs"][i][key] if "pairs" in r else r[key] for r in results], chosen)
                            for key in ("p", "p_refute", "statistic", "df", "estimate")}}
                        for i, j in enumerate(others)]
        out["p"] = np.minimum(1.0, out["p"] * top)
        out["companion"] = {**out["companion"], "p": np.minimum(1.0, out["companion"]["p"] * top),
                            "p_floor": min(1.0, out["companion"]["p_floor"] * top)}
        out["chosen"] = np.array(check.arms[:top])[chosen]
        test += f", Bonferroni x{top} for the best of {', '.join(check.arms[:top])}"
        hypothesis = f"the best of {', '.join(check.arms[:top])} {word} each of {rest} ({check.better} is better)"
    # refuted only when every candidate leader is (the claim needs just one of them to win)
    refuted = np.all(np.stack([np.asarray(r["decision"]) == "refuted" for r in results], -1), -1)
    # each leader refutes at alpha / top: so p_refute < alpha exactly when every leader refutes (Holm reads it)
    out["p_refute"] = np.minimum(1.0, top * np.max(np.stack([np.asarray(r["p_refute"]) for r in results], -1), -1))
    out["no_spread"] = np.any(np.stack([np.asarray(r["no_spread"]) for r in results], -1), -1)
    out["seeds_refute"] = np.max(np.stack([np.asarray(r["seeds_refute"], float) for r in results], -1), -1)
    out["seeds_to_decide"] = np.fmin(np.asarray(out["seeds_support"], float), out["seeds_refute"])
    out["decision"] = np.where(out["p"] < check.alpha, "supported", np.where(refuted, "refuted", "undecided"))
    return _finish({**out, "test": test, "hypothesis": hypothesis, "paired": paired}, batch)


def _choose(options: list, chosen: np.ndarray):
    """Per simulation, the field of the chosen leader (tuples and dicts field by field)."""
    first = options[0]
    if isinstance(first, dict):
        return {k: _choose([o[k] for o in options], chosen) if not isinstance(first[k], (str, bool, int, float))
                else first[k] for k in first}
    if isinstance(first, tuple):
        return tuple(_choose([o[i] for o in options], chosen) for i in range(len(first)))
    stacked = np.stack([np.broadcast_to(np.asarray(o), np.shape(chosen)) for o in options], -1)
    return np.take_along_axis(stacked, np.asarray(chosen)[..., None], -1)[..., 0]


@CHECKS.register("at_least")
@needs("bound", optional=("derived", "paired"), arms=(1, 3))
def at_least(values, check) -> dict:
    """A derived quantity f = N / D (see DERIVED; N and D linear in the arms' means) at least `bound`.

    Tested exactly, without a ratio's delta method: with D > 0, f >= b  <=>  L = N - b D >= 0, a linear
    contrast with a t test (per-seed L when paired, Welch-Satterthwaite otherwise); when D is not a
    constant, D > 0 is tested too (intersection-union, p = max). The interval on f is Fieller's (the set
    of b the contrast test does not reject), so it is dual to the test; it is unbounded when D is not
    clearly nonzero. Refuted when L < 0 confidently and D > 0. Companion (paired): sign flips of L (and D).
    """
    spec = DERIVED[check.derived or "mean"]
    xs, batch = _arms(values, check)
    paired = _is_paired(values, check)
    alpha, b = check.alpha, check.bound
    cn, cd, d0 = np.array(spec.numerator, float), np.array(spec.denominator, float), spec.constant
    has_den = bool(np.any(cd != 0))
    q, tiny = _rounding_var(*xs), (SPREAD_TOL * _scale(*xs)) ** 2  # see _difference
    cl = cn - b * cd
    if paired:
        stack = np.stack(xs, -1)  # (..., seeds, arms)
        n = stack.shape[-2]
        num_i, den_i = stack @ cn, stack @ cd + d0
        num, den = num_i.mean(-1), den_i.mean(-1)
        lin_i = num_i - b * den_i
        sd_l = np.sqrt(_var(lin_i) + (cl @ cl) * q)
        # a denominator without spread (one run reused for every seed, e.g. relative_change against a fixed_seed
        # 'old' arm) is a constant given that run: D > 0 is then known, not untestable. Counts (integers) can tie
        # by chance, so there it stays unmeasured spread; real-valued metrics equal to 1e-9 are one run.
        den_constant = has_den & ~(_var(den_i) > tiny) & ~_integral(*xs)
        no_spread = ~(_var(lin_i) > tiny * (1 + b * b)) | (has_den & ~(_var(den_i) > tiny) & ~den_constant)
        with np.errstate(invalid="ignore"):
            cov = ((num_i - num[..., None]) * (den_i - den[..., None])).sum(-1) / (n - 1) if n > 1 else np.nan
        a0, a1, a2 = (_var(num_i) + (cn @ cn) * q) / n, (cov + (cn @ cd) * q) / n, (_var(den_i) + (cd @ cd) * q) / n
        # the skew hedge at the share one arm's noise carries in L (and in D); an arm reused for every seed carries none
        varying = np.stack([_var(x) > tiny for x in xs], -1)
        share_l, share_d = skew_share(cl, varying), skew_share(cd, varying)
        hedge_l, hedge_d = skew_factor(n, share_l), skew_factor(n, share_d)
        se_l, df_l = sd_l / math.sqrt(n) * hedge_l, np.full(np.shape(num), n - 1.0)
        se_d, df_d = np.sqrt(a2) * hedge_d, df_l
        guard_l = guard_d = None
        sd_unit = sd_l
    else:
        means = [x.mean(-1) for x in xs]
        no_spread = ~(np.min(np.stack([_var(x) for x in xs], 0), 0) > tiny)
        raw = [_var(x) + q for x in xs]
        v = [r / x.shape[-1] for r, x in zip(raw, xs)]
        ns = [x.shape[-1] for x in xs]
        num = sum(c * m for c, m in zip(cn, means))
        den = sum(c * m for c, m in zip(cd, means)) + d0

        def satterthwaite(c):  # se, Satterthwaite's df, and Hsu's guard where the arms in the contrast differ in size
            var = sum(ci ** 2 * vi for ci, vi in zip(c, v))
            with np.errstate(divide="ignore", invalid="ignore"):
                df = var ** 2 / sum((ci ** 2 * vi) ** 2 / (ni - 1) for ci, vi, ni in zip(c, v, ns) if ci)
            se = np.sqrt(var)
            return se, np.where(var == 0, sum(ns) - len(ns), df), _hsu_guard(se, [ni for ci, ni in zip(c, ns) if ci])

        a0 = sum(c ** 2 * vi for c, vi in zip(cn, v))
        a1 = sum(c * e * vi for c, e, vi in zip(cn, cd, v))
        a2 = sum(c ** 2 * vi for c, vi in zip(cd, v))
        se_l, df_l, guard_l = satterthwaite(cn - b * cd)
        se_d, df_d, guard_d = satterthwaite(cd) if has_den else (np.zeros(np.shape(num)), df_l, None)
        (hedge_l, share_l), (hedge_d, share_d) = welch_skew(cl, ns), (welch_skew(cd, ns) if has_den else (1.0, 0.0))
        se_l, se_d = se_l * hedge_l, se_d * hedge_d
        sd_unit = np.sqrt(sum((c ** 2) * r for c, r in zip(cn - b * cd, raw)))
    lin = num - b * den
    p_l, t_l = _p_above(lin, se_l, df_l, no_spread, guard_l)
    p_l_ref, _ = _p_above(-lin, se_l, df_l, no_spread, guard_l)
    p_d, t_d = _p_above(den, se_d, df_d, no_spread, guard_d) if has_den else (np.zeros(np.shape(lin)), np.full(np.shape(lin), np.inf))
    if paired and has_den:
        known = np.where(den > 0, 0.0, 1.0)
        p_d = np.where(den_constant & ~no_spread, known, p_d)
        t_d = np.where(den_constant & ~no_spread, np.where(den > 0, np.inf, -np.inf), t_d)
    p = np.maximum(p_l, p_d)
    l_binds = np.isnan(p_l) | (p_l >= p_d)
    # refuting needs D > 0 too (with D <= 0, L < 0 says nothing about N / D): p_refute is the larger of the two,
    # so every reader of p_refute (the sequential looks, Holm) asks what the fixed decision asks
    p_refute = np.maximum(p_l_ref, p_d)
    supported = p < alpha
    refuted = p_refute < alpha
    # Fieller: {f : (N - f D)^2 <= q^2 (a0 - 2 f a1 + f^2 a2)}, q at the contrast's df times the skew hedge of the
    # contrast N - f D, which depends on f: each end is found again at its own hedge until it settles (a few rounds),
    # so that the interval excludes a bound exactly when the test at that bound rejects; Welch at unequal sizes: q is
    # at least Hsu's t quantile (the guard's standard error is the unhedged one, sqrt(a0 - 2 f a1 + f^2 a2))
    ns = [x.shape[-1] for x in xs]

    def hedge_at(f):
        c = cn - np.asarray(f, float)[..., None] * cd
        if paired:
            return skew_factor(ns[0], skew_share(c, varying))
        w = np.abs(c) / np.sqrt(ns)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = w / np.sqrt(np.sum(w ** 2, -1, keepdims=True))
        return np.max(np.where(c != 0, skew_factor(np.array(ns, float), np.nan_to_num(w)), 1.0), -1)

    def ends(h):
        qq = _quantile(alpha, df_l) * h
        if guard_l is not None:
            qq = np.fmax(qq, _quantile(alpha, guard_l[1]))
        qa, qb, qc = den ** 2 - qq ** 2 * a2, num * den - qq ** 2 * a1, num ** 2 - qq ** 2 * a0
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.sqrt(np.maximum(qb ** 2 - qa * qc, 0))
            return (qb - root) / qa, (qb + root) / qa, qa

    lo, hi, qa = ends(hedge_l)
    if has_den:
        for _ in range(6):
            lo_new, _, qa_lo = ends(hedge_at(np.where(np.isfinite(lo), lo, b)))
            _, hi_new, qa_hi = ends(hedge_at(np.where(np.isfinite(hi), hi, b)))
            lo, hi, qa = lo_new, hi_new, np.minimum(qa_lo, qa_hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = num / den
        effect = lin / sd_unit
    bounded = qa > 0
    lo, hi = np.where(bounded, lo, -np.inf), np.where(bounded, hi, np.inf)
    if paired:
        comps = [sign_flip(lin_i)] + ([sign_flip(den_i)] if has_den else [])
        comp = _companion_max(comps)
        comp["test"] = "sign-flip permutation on " + ("N - bound D and D" if has_den else "N - bound D")
    else:
        comp = {"test": "none (no exact permutation test for a contrast of independent arms)",
                "p": np.full(np.shape(lin), np.nan), "p_floor": math.nan, "exact": False, "n_permutations": 0}
    label = f"{check.derived or 'mean'}({', '.join(check.arms)})"
    note = _hsu_note(paired, [n for c, n in zip(cn - b * cd, ns) if c], [n for c, n in zip(cd, ns) if c])
    out = {"test": ("paired t" if paired else "Welch t") + " on N - bound x D" + (" and on D" if has_den else "")
           + (f" ({note})" if note else ""),
           "paired": paired, "hypothesis": f"{label} >= {b:g}", "formula": spec.formula,
           "estimand": label, "estimate": f, "estimate_ci": (lo, hi), "diff": f - b, "ci": (lo - b, hi - b),
           "ci_level": 1 - 2 * alpha, "reference": b,
           "statistic": np.where(l_binds, t_l, t_d), "df": np.where(l_binds, df_l, df_d), "p": p,
           "p_refute": p_refute, "effect_size": effect,
           "decision": np.where(supported, "supported", np.where(refuted, "refuted", "undecided")),
           "seeds_support": np.where(no_spread, np.nan, _seeds_needed(lin, sd_unit, alpha, not paired, hedge=share_l)),
           "seeds_refute": np.where(no_spread, np.nan, _seeds_needed(-lin, sd_unit, alpha, not paired, hedge=share_l)),
           "companion": comp, "numerator": num, "denominator": den, "no_spread": no_spread,
           "skew_share": float(np.max(np.maximum(share_l, share_d)))}
    out["seeds_to_decide"] = np.fmin(out["seeds_support"], out["seeds_refute"])
    return _finish(out, batch)


@CHECKS.register("at_most")
@needs("bound", optional=("derived", "paired"), arms=(1, 2))
def at_most(values, check) -> dict:
    """A derived quantity at most `bound` (e.g. a student's fidelity to its teacher): at_least on the
    negated values against -bound, the same test, with the estimate and interval mirrored back.
    Only for quantities with a constant denominator (mean, difference), where negating the values
    negates the quantity."""
    name = check.derived or "mean"
    spec = DERIVED[name]
    if any(spec.denominator) or len(check.arms) != len(spec.roles):
        raise ValueError(f"at_most takes derived 'mean' (one arm) or 'difference' (two arms), "
                         f"got '{name}' with {len(check.arms)} arm(s)")
    flipped = at_least({arm: -np.asarray(v, float) for arm, v in values.items()},
                       check.model_copy(update={"bound": -check.bound}))
    lo, hi = flipped["estimate_ci"]
    dlo, dhi = flipped["ci"]
    return {**flipped, "hypothesis": f"{name}({', '.join(check.arms)}) <= {check.bound:g}",
            "estimate": -flipped["estimate"], "estimate_ci": (-hi, -lo), "diff": -flipped["diff"],
            "ci": (-dhi, -dlo), "reference": check.bound, "numerator": -flipped["numerator"]}
