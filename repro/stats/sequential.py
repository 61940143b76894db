"""Adding seeds until a claim is decided: a group-sequential design whose error rates hold across looks.

A profile may declare `sequential: {max_seeds: N, group: K, spending: obf | pocock}`. Its claims are then
looked at after n_1 < n_2 < ... < n_L seeds per arm: n_1 = the profile's seeds, then K more at a time up to
N. At look l the claim's own check (repro.stats, unchanged) runs on the first n_l seeds, and the claim is

  supported  (REPRODUCED)      when the check's p        < a_l
  refuted    (NOT REPRODUCED)  when the check's p_refute < a_l

else K more seeds are trained; after look L it is INCONCLUSIVE. The a_l spend alpha over the looks with a
Lan-DeMets spending function f of the information time t_l = n_l / n_L (f(1) = alpha):

  obf     f(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))    O'Brien-Fleming type (the default): little early,
                                                         most at the last look, where borderline claims end
  pocock  f(t) = alpha ln(1 + (e - 1) t)                 Pocock type: spends early, stops clear claims sooner

and a_l = f(t_l) - f(t_{l-1}). The looks are combined by the union (Bonferroni) bound: P(some look wrongly
crosses) <= sum of a_l = alpha, for either side and every check kind, whatever the correlation between looks
and without a model of the data: this needs only that each look's p is a valid p-value. Where a side's p at
every look is one one-sided t test on iid per-seed values, or the largest of several (paired greater/less,
paired at_least/at_most, the support side of paired equivalent, best_of with one leader, matches), the looks'
joint law is known (nested t statistics are pivotal at the null), and that side's sequential p is exact
instead: the simulated null probability (NULL_SIMULATIONS draws, fixed seed) that min_l p_l / a_l is as small
as observed, the larger of two nulls' (normal values, and the edge of the skew class the checks' hedge holds the
level over: one lognormal component of the check's skew share), each through the hedged p of the checks. It spends the whole alpha (0.050 where the union bound realised 0.030 for looks at 5, 7, 9, 11)
and is a valid p-value at every level, so Holm can read it; each look is then in effect tested at a_l times a
factor >= 1 (effective_boundaries). Welch's nuisance variance ratio, and sides that take the smallest of several
p-values times their number (TOST's refutation, several pairs refuting, best_of's top-k choice), keep the union
bound: a factor simulated for one t sequence at alpha does not bound those unions at alpha / k.

Holm across a report's claims: a sequentially judged claim carries the sequential p-value
p_seq = min over the looks taken of p_l alpha / a_l (capped at 1; or the exact one above). It is valid
(P(p_seq <= u) <= u, by the same bound over all L looks, whichever of them were taken and why), and p_seq < alpha
exactly when some look crossed its (effective) boundary, so Holm treats it as any other claim's p. `repro run --until-decided` goes on
while a claim is INCONCLUSIVE after Holm, so one that crossed its own boundary but not Holm's threshold gets
further looks too. Refutations likewise (p_refute_seq).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..registry import CHECKS
from .small_sample import W_PAIRED, skew_factor

SPENDING = ("pocock", "obf")


def spent(t, alpha: float, spending: str):
    """Alpha spent by information time t in [0, 1] (Lan and DeMets 1983); spent(1) = alpha."""
    t = np.asarray(t, float)
    if spending == "pocock":
        return alpha * np.log1p((math.e - 1) * t)
    if spending == "obf":
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2 - 2 * sps.norm.cdf(sps.norm.ppf(1 - alpha / 2) / np.sqrt(t)), 0.0)
    raise ValueError(f"unknown spending function '{spending}'; known: {', '.join(SPENDING)}")


def look_sizes(first: int, max_seeds: int, group: int) -> list[int]:
    """Seeds per arm at each look: first, first + group, ... up to max_seeds (the last look may be smaller)."""
    if first < 1 or group < 1 or max_seeds < first:
        raise ValueError(f"looks need 1 <= first ({first}) <= max_seeds ({max_seeds}) and group >= 1 ({group})")
    sizes = list(range(first, max_seeds + 1, group))
    return sizes if sizes[-1] == max_seeds else sizes + [max_seeds]


@dataclass(frozen=True)
class Design:
    looks: tuple[int, ...]  # seeds per arm at each look
    alpha: float
    spending: str = "obf"

    @classmethod
    def of(cls, first: int, max_seeds: int, group: int, alpha: float, spending: str = "obf") -> "Design":
        return cls(tuple(look_sizes(first, max_seeds, group)), alpha, spending)

    @property
    def boundaries(self) -> np.ndarray:
        """a_l: the level each look is tested at; they sum to alpha."""
        t = np.array(self.looks, float) / self.looks[-1]
        return np.diff(spent(np.concatenate([[0.0], t]), self.alpha, self.spending))


NULL_SIMULATIONS = 200_000  # one-sample t sequences per design for the exact sequential p (floor 5e-6)


@functools.lru_cache(maxsize=64)
def _null_ratios(looks: tuple[int, ...], bounds: tuple[float, ...], share: float = W_PAIRED) -> np.ndarray:
    """Sorted draws of M = min over the looks of p_l / a_l for one one-sided t test on nested samples of iid values
    at its null, with the check kinds' skew hedge (p_l from t / skew_factor(n_l, share)), with a fixed seed so that
    every judging of a design reads the same numbers. Two nulls, and per rank the smaller draw (so that the p read
    from them is the larger of the two nulls' probabilities, valid under both): normal values (the law is pivotal,
    the same whatever the mean and sd), and the edge of the class the hedge holds the level over, one lognormal
    (sigma 1) component with the share `share` of the sd, skewed the way that favours the claim. Without the
    second the looks' joint law under skew is not the normal one, and the exact p spent more than alpha there
    (one lognormal arm: 0.080 wrong REPRODUCED for matches, where one look's hedged p holds 0.050)."""
    rng = np.random.default_rng(19830101)
    w = float(share)
    x = rng.standard_normal((NULL_SIMULATIONS, looks[-1]))
    sigma = 1.0
    ln = (rng.lognormal(0, sigma, x.shape) - math.exp(sigma ** 2 / 2)) / math.sqrt(
        (math.exp(sigma ** 2) - 1) * math.exp(sigma ** 2))
    skewed = -w * ln + math.sqrt(max(1 - w * w, 0.0)) * rng.standard_normal(x.shape)
    out = []
    for values in (x, skewed):
        total, squares = np.cumsum(values, 1), np.cumsum(values * values, 1)
        ratio = np.full(NULL_SIMULATIONS, np.inf)
        for n, a in zip(looks, bounds):
            if n < 2:
                continue
            mean = total[:, n - 1] / n
            sd = np.sqrt(np.maximum(squares[:, n - 1] - n * mean ** 2, 0) / (n - 1))
            t = mean / (sd / math.sqrt(n)) / float(skew_factor(n, w))
            ratio = np.fmin(ratio, sps.t.sf(t, n - 1) / a)
        out.append(np.sort(ratio))
    return np.minimum(*out)


def exact_sides(check, paired: bool) -> tuple[bool, bool]:
    """(support, refute): whether that side's p at every look is one one-sided t test on iid per-seed values (paired
    differences, one arm, a contrast of arms paired by seed), or the largest of several such tests (an
    intersection-union: at its least favourable point only one of them is at its null). There the looks' joint law
    is the simulated one of _null_ratios, and the exact sequential p replaces the union bound. Not: Welch (a
    nuisance variance ratio), and sides that take the smallest p of several tests times their number (TOST's
    refutation, several pairs refuting, best_of's top-k choice), where the union's overlap at alpha / k is not the
    one simulated at alpha."""
    top = getattr(check, "top", None) or 1
    if check.kind == "matches":
        return True, False
    if not paired:
        return False, False
    if check.kind in ("greater", "less", "at_least", "at_most"):
        return True, True
    if check.kind == "equivalent":
        return True, False
    if check.kind == "best_of":
        return top == 1, top == 1 and len(check.arms) == 2
    return False, False


def _sequential_p(running, design: "Design", exact: bool, share: float = W_PAIRED):
    """p_seq from the running minimum of p_l / a_l: the union bound (m alpha), or with `exact` the simulated null
    probability that M is as small, whichever is smaller (the exact one is, up to Monte Carlo error)."""
    union = np.asarray(running, float) * design.alpha
    if not exact:
        return union
    draws = _null_ratios(design.looks, tuple(design.boundaries.tolist()), float(share))
    with np.errstate(invalid="ignore"):
        count = np.searchsorted(draws, np.where(np.isnan(running), np.inf, running), side="right")
    simulated = (count + 1) / (len(draws) + 1)
    return np.where(np.isnan(running), np.nan, np.fmin(simulated, union))


def effective_boundaries(design: "Design", exact: bool, share: float = W_PAIRED) -> np.ndarray:
    """The level each look's p is in effect tested at: a_l (union bound), or a_l times the largest M that the exact
    sequential p still calls significant (at least a_l; they then sum to more than alpha, which the looks' overlap
    pays for)."""
    if not exact:
        return design.boundaries
    draws = _null_ratios(design.looks, tuple(design.boundaries.tolist()), float(share))
    k = math.ceil(design.alpha * (len(draws) + 1) - 1)  # (c + 1) / (N + 1) < alpha  <=>  c < k
    return design.boundaries * max(float(draws[k - 1]) if k >= 1 else 0.0, 1.0)


def _first(values: dict, n: int) -> dict:
    """The first n seeds of every arm (an arm with fewer runs, e.g. one fixed-seed run, keeps what it has)."""
    return {arm: np.asarray(v, float)[..., :n] for arm, v in values.items()}


def judge(values: dict, check, design: Design) -> dict:
    """The sequential decision on `values` (arm -> per-seed numbers in the spec's seed order, or a batch of
    simulations: arm -> (sims, seeds)), looking at every look whose seeds are there, in order.

    Returns: decision (supported / refuted / undecided, at the first look that crossed), stopped_at (that
    look's index, or the last look taken), seeds (seeds per arm at it), complete (all looks taken),
    p_seq / p_refute_seq (over every look taken), and looks: per look the check's p, p_refute, statistic and
    estimate with the boundary a_l."""
    fn = CHECKS.get(check.kind)
    have = min(np.shape(v)[-1] for arm, v in values.items() if arm in check.arms)
    taken = [n for n in design.looks if n <= have] or [have]
    bounds = design.boundaries[:len(taken)]
    outcomes = [fn(_first(values, n), check) for n in taken]
    exact_up, exact_down = exact_sides(check, bool(np.all(outcomes[0]["paired"])))
    share = max(float(np.max(o.get("skew_share", W_PAIRED))) for o in outcomes)
    p = np.stack([np.asarray(o["p"], float) for o in outcomes], -1)
    p_ref = np.stack([np.asarray(o["p_refute"], float) for o in outcomes], -1)
    # the sequential p after each look, from the running minimum of p_l / a_l (NaN looks are skipped): a look
    # crosses when it brings p_seq below alpha, which is p_l below that look's effective boundary
    with np.errstate(invalid="ignore"):
        run_up = _sequential_p(np.fmin.accumulate(p / bounds, -1), design, exact_up, share).clip(max=1.0)
        run_down = _sequential_p(np.fmin.accumulate(p_ref / bounds, -1), design, exact_down, share).clip(max=1.0)
    crossed_up, crossed_down = run_up < design.alpha, run_down < design.alpha
    crossed = crossed_up | crossed_down
    any_crossed = crossed.any(-1)
    stop = np.where(any_crossed, np.argmax(crossed, -1), len(taken) - 1)
    up = np.take_along_axis(crossed_up, stop[..., None], -1)[..., 0] & any_crossed
    down = np.take_along_axis(crossed_down, stop[..., None], -1)[..., 0] & any_crossed & ~up
    # p_seq over every look taken: valid whatever made them be taken (the bound, union or exact, covers all L
    # looks), so a claim that crossed its own boundary but not Holm's may go on to further looks
    p_seq, p_ref_seq = run_up[..., -1], run_down[..., -1]
    effective = effective_boundaries(design, exact_up, share)[:len(taken)]
    out = {"decision": np.where(up, "supported", np.where(down, "refuted", "undecided")),
           "stopped_at": stop, "seeds": np.asarray(taken)[stop],
           "complete": len(taken) == len(design.looks), "p_seq": p_seq, "p_refute_seq": p_ref_seq,
           "outcomes": outcomes, "exact": (exact_up, exact_down),
           "boundaries": effective_boundaries(design, exact_up, share),
           "boundaries_refute": effective_boundaries(design, exact_down, share)}
    if np.ndim(p) == 1:  # one data set: plain numbers and the path, look by look
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}
        out["looks"] = [{"seeds": n, "p": _num(o["p"]), "p_refute": _num(o["p_refute"]),
                         "statistic": _num(o.get("statistic")), "estimate": _num(o.get("estimate")),
                         "boundary": float(a), "boundary_refute": float(r)}
                        for n, o, a, r in zip(taken, outcomes, effective, out["boundaries_refute"])]
    return out


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
