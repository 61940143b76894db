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
and without a model of the data: this needs only that each look's p is a valid p-value. The price is some
power against exact group-sequential boundaries (which exist for a normal z test, not for TOST, best_of or
a Fieller ratio); tests/test_sequential.py measures it.

Holm across a report's claims: a sequentially judged claim carries the sequential p-value
p_seq = min over the looks taken of p_l alpha / a_l (capped at 1). It is valid (P(p_seq <= u) <= u, by the
same union bound over all L looks, whichever of them were taken and why), and p_seq < alpha exactly when some
look crossed its boundary, so Holm treats it as any other claim's p. `repro run --until-decided` goes on
while a claim is INCONCLUSIVE after Holm, so one that crossed its own boundary but not Holm's threshold gets
further looks too. Refutations likewise (p_refute_seq).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from .registry import CHECKS

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
    p = np.stack([np.asarray(o["p"], float) for o in outcomes], -1)
    p_ref = np.stack([np.asarray(o["p_refute"], float) for o in outcomes], -1)
    crossed_up, crossed_down = p < bounds, p_ref < bounds
    crossed = crossed_up | crossed_down
    any_crossed = crossed.any(-1)
    stop = np.where(any_crossed, np.argmax(crossed, -1), len(taken) - 1)
    up = np.take_along_axis(crossed_up, stop[..., None], -1)[..., 0] & any_crossed
    down = np.take_along_axis(crossed_down, stop[..., None], -1)[..., 0] & any_crossed & ~up
    # p_seq over every look taken: valid whatever made them be taken (the union bound covers all L looks),
    # so a claim that crossed its own boundary but not Holm's may go on to further looks
    scale = design.alpha / bounds
    with np.errstate(invalid="ignore"):
        p_seq = np.fmin.reduce(p * scale, -1).clip(max=1.0)
        p_ref_seq = np.fmin.reduce(p_ref * scale, -1).clip(max=1.0)
    out = {"decision": np.where(up, "supported", np.where(down, "refuted", "undecided")),
           "stopped_at": stop, "seeds": np.asarray(taken)[stop],
           "complete": len(taken) == len(design.looks), "p_seq": p_seq, "p_refute_seq": p_ref_seq,
           "outcomes": outcomes}
    if np.ndim(p) == 1:  # one data set: plain numbers and the path, look by look
        out = {k: (v.item() if isinstance(v, np.ndarray) else v) for k, v in out.items()}
        out["looks"] = [{"seeds": n, "p": _num(o["p"]), "p_refute": _num(o["p_refute"]),
                         "statistic": _num(o.get("statistic")), "estimate": _num(o.get("estimate")),
                         "boundary": float(a)} for n, o, a in zip(taken, outcomes, bounds)]
    return out


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
