"""Calibration at length: the regimes of tests/test_calibration.py and tests/test_sequential.py with more simulated
data sets, and the power the issue-25 changes cost or gain, before (the old rule) and after (today's code).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/calibration.py [--sims 20000]

Each rate is the share of simulated data sets decided wrongly at the least favourable null (or rightly, for power),
through the registered check kinds themselves (repro.registry.CHECKS); "before" swaps in the old rule by
monkeypatching repro.stats. 20k data sets give a Monte Carlo half-width of about 0.003 at a rate of 0.05.
benchmarks/calibration.txt holds what it printed (see its last line for the time, on one busy core); `--skew` runs only
the paired skew tables (the paired t with and without stats.skew_factor, and the rules tried); `--kinds` only the
issue-33 table (every kind at the edge of its skew class, fixed and sequential, level and power, before and after: the
before columns run this script against repro/ of the commit BEFORE, extracted with git archive); `--welch` only the
Welch table (unequal sizes and variances: a grid of sizes, sd ratios and arm shapes at alpha 0.05 / 0.01 / 0.002, the
tails of normal arms, and the power; before and hedge only from WELCH_BEFORE the same way).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager

import numpy as np

from repro.stats import checks as SC, small_sample as SS
from repro.registry import CHECKS
from repro.stats.sequential import Design, judge
from repro.spec import Check

ALPHA = 0.05


def check(kind, arms, **kw) -> Check:
    return Check(kind=kind, metric="m", arms=arms, alpha=ALPHA, justification="calibration", **kw)


def supported(kind, values, **kw) -> float:
    out = CHECKS.get(kind)(values, check(kind, list(values), **kw))
    return float(np.mean(np.asarray(out["decision"]) == "supported"))


@contextmanager
def rule(allowance=None, shrink=None, hedge=True):
    """The old rules: the integer allowance (1/12 before, 1/24 now), the unequal-sizes df share (DF_SHRINK, 1 before
    issue 25; only in WELCH_BEFORE's tree, a no-op here) and the paired t's skew factor on its standard error
    (hedge=False: none, as before). Each is set where it is defined (repro/stats/small_sample.py) and where the check
    kinds read it (checks.py imports some by name)."""
    modules = (SS, SC)
    saved = [{k: getattr(m, k) for k in ("_rounding_var", "DF_SHRINK", "skew_factor") if hasattr(m, k)} for m in modules]
    old_round = SS._rounding_var
    changes = {}
    if allowance is not None:
        changes["_rounding_var"] = lambda *xs: np.where(old_round(*xs) > 0, allowance, 0.0)
    if shrink is not None:
        changes["DF_SHRINK"] = shrink
    if not hedge:
        changes["skew_factor"] = lambda n, w=None: np.ones(np.shape(n))
    for module, names in zip(modules, saved):
        for name in names.keys() & changes.keys():
            setattr(module, name, changes[name])
    try:
        yield
    finally:
        for module, names in zip(modules, saved):
            for name, value in names.items():
                setattr(module, name, value)


def lognormal(rng, shape, sigma=1.0):
    x, m = rng.lognormal(0, sigma, shape), math.exp(sigma ** 2 / 2)
    return (x - m) / math.sqrt((math.exp(sigma ** 2) - 1) * math.exp(sigma ** 2))


def integer_table(rng, sims):
    print("\n== integer metrics (paired greater, 5 seeds; null: worst of lattice offsets 0, 0.25, 0.5) ==")
    print(f"{'spread':>6} | {'none (now)':>13} | {'1/24 (before)':>13} | {'1/12 (older)':>13}   level / power at 0.5, 1, 2 sd")
    for spread in (0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0):
        cells = []
        for allowance in (0.0, 1 / 24, 1 / 12):
            with rule(allowance=allowance):
                level = 0.0
                for off in (0.0, 0.25, 0.5):
                    shared = rng.normal(0, spread, (sims, 5))
                    a, b = (np.round(off + shared + rng.normal(0, spread, (sims, 5))) for _ in range(2))
                    level = max(level, supported("greater", {"a": a, "b": b}))
                power = []
                for sd_units in (0.5, 1.0, 2.0):
                    shared = rng.normal(0, spread, (sims, 5))
                    effect = sd_units * spread * math.sqrt(2)
                    a = np.round(effect + shared + rng.normal(0, spread, (sims, 5)))
                    b = np.round(shared + rng.normal(0, spread, (sims, 5)))
                    power.append(supported("greater", {"a": a, "b": b}))
            cells.append(f"{level:.3f} / {'/'.join(f'{p:.2f}' for p in power)}")
        print(f"{spread:>6} | " + " | ".join(cells))
    print("issue 33's regime: per-seed differences of sd 0.5 (each arm's own noise 0.35, seed effect 0.5), 5 seeds, "
          "effect 1 sd (0.5); power of paired greater:")
    cells = []
    for hedge in (True, False):
        for allowance in (0.0, 1 / 24, 1 / 12):
            with rule(allowance=allowance, hedge=hedge):
                shared = rng.normal(0, 0.5, (sims, 5))
                a = np.round(0.5 + shared + rng.normal(0, 0.5 / math.sqrt(2), (sims, 5)))
                b = np.round(shared + rng.normal(0, 0.5 / math.sqrt(2), (sims, 5)))
                cells.append(f"{'hedge' if hedge else 'no hedge'}, allowance {allowance:.3f}: "
                             f"{supported('greater', {'a': a, 'b': b}):.3f}")
    print("  " + "; ".join(cells))



def _differences(d) -> dict:
    values, counts = np.unique(d, return_counts=True)
    return dict(zip(values.astype(int).tolist(), (counts / d.size).tolist()))


def _most_powerful(p: dict, q: dict, n: int = 5) -> float:
    """Neyman-Pearson: the power at p of the most powerful test of n iid per-seed differences against the one null
    q at level ALPHA (randomised at the edge, so no test on the differences can do better, against q or against any
    null class that holds q). Every multiset of n values is enumerated, in order of q / p."""
    rows = []
    for combo in itertools.combinations_with_replacement(sorted(p.keys() | q.keys()), n):
        counts = Counter(combo)
        ways = math.factorial(n) / math.prod(math.factorial(k) for k in counts.values())
        pp, qq = (ways * math.prod(dist.get(v, 0.0) ** k for v, k in counts.items()) for dist in (p, q))
        if pp > 0:
            rows.append((qq / pp, pp, qq))
    level = power = 0.0
    for _, pp, qq in sorted(rows):
        if level + qq > ALPHA:
            return power + pp * (ALPHA - level) / qq
        level, power = level + qq, power + pp
    return power


def integer_limit_table(rng, sims):
    """Issue 33 asked for power >= 0.35 at spread 0.5, 5 seeds, 1 sd with level <= alpha. Against the symmetric
    lattice nulls that is within reach (the unhedged t has 0.42), but a count can be skewed too: with the issue's
    own skew regime rounded (one lognormal arm, the long tail against the claim, means of the rounded values equal)
    no test on the per-seed differences reaches it. Per null: the most powerful test's power (an upper bound for
    every test), and the paired t's level and power with the skew hedge (now) and without."""
    print("\n== integer metrics: the limit (paired greater, 5 seeds, differences of sd 0.5 x spread / 0.5; the "
          "most powerful test against each null alone) ==")
    draws = 2_000_000

    def rounded_pair(spread, shift, skew_sigma, offset, size):
        shared = rng.normal(0, spread, size)
        if skew_sigma is None:  # the symmetric lattice null (or the target, shifted by one sd of the differences)
            own = spread / math.sqrt(2) if shift else spread
            return (np.round(offset + shift + shared + rng.normal(0, own, size)),
                    np.round(offset + shared + rng.normal(0, own, size)))
        a = offset - spread * lognormal(rng, size, skew_sigma)  # long left tail: "greater" is favoured
        b = offset + spread * rng.normal(0, 1, size)
        target, lo, hi = np.round(a).mean(), -3.0, 3.0
        for _ in range(30):  # b's shift that gives round(b) the mean of round(a)
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.round(b + mid).mean() < target else (lo, mid)
        return np.round(shared + a), np.round(shared + b + (lo + hi) / 2)

    for spread in (0.5, 0.7, 1.0):
        target = _differences(np.subtract(*rounded_pair(spread, spread, None, 0.0, draws)))
        a, b = rounded_pair(spread, spread, None, 0.0, (sims, 5))
        powers = []
        for hedge in (True, False):
            with rule(hedge=hedge):
                powers.append(supported("greater", {"a": a, "b": b}))
        print(f"spread {spread}: power of the paired t {powers[0]:.3f} with the hedge, {powers[1]:.3f} without")
        for skew_sigma in (None, 0.5, 1.0):
            cells = []
            for offset in (0.0, 0.25, 0.5):
                bound = _most_powerful(target, _differences(np.subtract(*rounded_pair(spread, 0.0, skew_sigma, offset,
                                                                                      draws))))
                a, b = rounded_pair(spread, 0.0, skew_sigma, offset, (sims, 5))
                levels = []
                for hedge in (True, False):
                    with rule(hedge=hedge):
                        levels.append(supported("greater", {"a": a, "b": b}))
                cells.append(f"offset {offset}: bound {bound:.3f}, t level {levels[0]:.3f} / {levels[1]:.3f}")
            name = "symmetric" if skew_sigma is None else f"lognormal {skew_sigma} arm"
            print(f"  null {name:>18}: " + "; ".join(cells))


WELCH_BEFORE = "700a35f"  # the last commit whose Welch t stacked the unequal-sizes df shrink on the skew hedge
WELCH_SIZES = ((3, 5), (3, 8), (3, 12), (4, 8), (5, 10), (3, 3), (5, 5))  # (smaller arm, larger arm) seeds
WELCH_RATIOS = (1 / 3, 1 / 2, 1.0, 2.0, 3.0, 5.0)  # sd of the smaller arm / sd of the larger
WELCH_ALPHAS = (0.05, 0.01, 0.002)


def _t3(rng, shape):
    return rng.standard_t(3, shape) / math.sqrt(3)


def _normal(rng, shape):
    return rng.normal(0, 1, shape)


# name: (noise of the smaller arm, of the larger, each of mean 0 and sd 1; the sd ratios inside the class the
# Welch t is calibrated for: normal and t3 arms at every ratio, one lognormal arm whose sd is at most the other's,
# two lognormal arms skewed the same way at equal sds). The rest of the grid is outside it.
WELCH_SHAPES = {
    "normal": (_normal, _normal, WELCH_RATIOS),
    "t3": (_t3, _t3, WELCH_RATIOS),
    "small lognormal 0.5": (lambda r, s: lognormal(r, s, 0.5), _normal, (1 / 3, 1 / 2, 1.0)),
    "small lognormal 1": (lognormal, _normal, (1 / 3, 1 / 2, 1.0)),
    "large lognormal 1": (_normal, lognormal, (1.0, 2.0, 3.0, 5.0)),
    "both lognormal 1": (lognormal, lognormal, (1.0,)),
    "both lognormal 1, opposite": (lognormal, lambda r, s: -lognormal(r, s), ()),
}
WELCH_TAILS = ((3, 5), (3, 8), (3, 12), (4, 8))  # normal arms, the smaller arm the noisier: its Satterthwaite df's tail


@contextmanager
def _decisions_only():
    """The check kinds without the two parts that cost most and decide nothing (the permutation companion, the
    seeds to decide), so that a grid of 20k data sets per cell runs in minutes."""
    saved = {k: getattr(SC, k) for k in ("two_sample_permutation", "_seeds_all", "_seeds_needed")}
    SC.two_sample_permutation = lambda a, b: {"test": "-", "p": np.full(np.shape(a)[:-1], np.nan), "p_floor": 0.0,
                                              "exact": True, "n_permutations": 0}
    SC._seeds_all = lambda distances, *a, **k: np.full(np.shape(distances[0]), np.nan)
    SC._seeds_needed = lambda distance, *a, **k: np.full(np.shape(distance), np.nan)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(SC, k, v)


def _welch_p(a, b):
    """p of "a > b" and of "a < b" (Welch, through the registered kind)."""
    chk = check("greater", ["a", "b"], paired=False)
    return (np.asarray(CHECKS.get("greater")({"a": a, "b": b}, chk)["p"], float),
            np.asarray(CHECKS.get("greater")({"a": -a, "b": -b}, chk)["p"], float))


def welch_rates(sims: int, variant: str = "now") -> dict:
    """Welch greater/less at unequal sizes, through the registered kind: per cell of WELCH_SIZES x WELCH_SHAPES x
    WELCH_RATIOS the wrong-REPRODUCED rate on the worse side at each of WELCH_ALPHAS; the tails of normal arms
    (5 x sims data sets, sd ratios 2-10); and the power of "greater" at equal sds (normal, alpha 0.05). The same
    seeds for every variant: "now" (this tree), "before" and "hedge only" (WELCH_BEFORE's tree, with its df
    shrink switched off for the latter)."""
    rng = np.random.default_rng(20251208)
    out = {"grid": {}, "tails": {}, "power": {}}
    with _decisions_only(), rule(shrink=1.0 if variant == "hedge only" else None):
        for na, nb in WELCH_SIZES:
            for shape, (small, large, _) in WELCH_SHAPES.items():
                for ratio in WELCH_RATIOS:
                    up, down = _welch_p(ratio * small(rng, (sims, na)), large(rng, (sims, nb)))
                    out["grid"][f"{na}|{nb}|{shape}|{ratio:.4f}"] = [
                        max(float(np.mean(up < x)), float(np.mean(down < x))) for x in WELCH_ALPHAS]
        for na, nb in WELCH_TAILS:
            for ratio in (2.0, 3.0, 5.0, 10.0):
                up, down = _welch_p(ratio * rng.normal(0, 1, (5 * sims, na)), rng.normal(0, 1, (5 * sims, nb)))
                out["tails"][f"{na}|{nb}|{ratio:g}"] = [max(float(np.mean(up < x)), float(np.mean(down < x)))
                                                        for x in WELCH_ALPHAS]
        for na, nb in ((3, 5), (3, 8), (4, 8), (5, 10), (3, 3), (5, 5)):
            for k in (0.5, 1.0, 2.0):
                up, _ = _welch_p(k * math.sqrt(2) + rng.normal(0, 1, (sims, na)), rng.normal(0, 1, (sims, nb)))
                out["power"][f"{na}|{nb}|{k:g}"] = float(np.mean(up < ALPHA))
    return out


def welch_table(rng, sims):
    before, hedge_only = (_rates_at(WELCH_BEFORE, sims, f"--welch-json={v}") for v in ("before", "hedge only"))
    now = welch_rates(sims)
    cols = ("before", "hedge only", "now")
    runs = dict(zip(cols, (before, hedge_only, now)))
    print(f"\n== Welch greater/less (unpaired), wrong REPRODUCED on the worse side at alpha 0.05 / 0.01 / 0.002, worst "
          f"over the smaller arm's sd / the larger's (1/3 .. 5); {sims} data sets per cell. before = {WELCH_BEFORE} "
          f"(Satterthwaite's df moved 3/4 of the way to Hsu's min(n) - 1 when the smaller arm has <= 4 seeds, times "
          f"the skew hedge); hedge only = that without the df shrink; now = the hedged Satterthwaite t and, with a "
          f"smaller arm of <= 4 seeds (equal sizes too), Hsu's t as well (the larger p) ==")
    print("in class: normal and t3 arms at every sd ratio; one lognormal arm (sigma 0.5 or 1) whose sd is at most the "
          "other's; both arms lognormal (same sign) at equal sds. [ratio] = where the worst case sits")
    print(f"{'sizes':>7} {'arms':>26} | {'in class':^74} | {'outside, at 0.05':^20}")
    print(f"{'':>7} {'':>26} | " + " | ".join(f"{c:^24}" for c in cols) + " | " + " ".join(f"{c.split()[0]:>6}" for c in cols))

    def worst(run, na, nb, shape, ratios, i):
        cells = [(run["grid"][f"{na}|{nb}|{shape}|{r:.4f}"][i], r) for r in ratios]
        return max(cells) if cells else (math.nan, math.nan)

    summary = {c: [[0.0, ""] for _ in WELCH_ALPHAS] for c in cols}
    for na, nb in WELCH_SIZES:
        for shape, (_, _, inside) in WELCH_SHAPES.items():
            outside = [r for r in WELCH_RATIOS if r not in inside]
            cells, outs = [], []
            for c in cols:
                levels = [worst(runs[c], na, nb, shape, inside, i) for i in range(len(WELCH_ALPHAS))]
                for i, (x, r) in enumerate(levels):
                    if x == x and x / WELCH_ALPHAS[i] > summary[c][i][0]:
                        summary[c][i] = [x / WELCH_ALPHAS[i], f"{na} v {nb} {shape} at sd ratio {r:.2g}"]
                cells.append("/".join(f"{x:.3f}" for x, _ in levels) + f" [{levels[0][1]:.2g}]" if inside else "-")
                outs.append(worst(runs[c], na, nb, shape, outside, 0)[0])
            print(f"{na:>2} v {nb:<3} {shape:>26} | " + " | ".join(f"{x:^24}" for x in cells) + " | "
                  + " ".join(f"{x:6.3f}" if x == x else f"{'-':>6}" for x in outs))
    print("worst in class, as a multiple of alpha (0.05 / 0.01 / 0.002): " + "; ".join(
        f"{c} " + " / ".join(f"{x:.2f} ({where})" for x, where in summary[c]) for c in cols))
    print("outside the class, a skewed smaller arm twice as noisy as the larger (alpha 0.05): " + "; ".join(
        f"{shape}, {na} v {nb}: " + " ".join(f"{c} {runs[c]['grid'][f'{na}|{nb}|{shape}|2.0000'][0]:.3f}" for c in cols)
        for shape in ("small lognormal 0.5", "small lognormal 1") for na, nb in ((3, 8), (3, 12))))
    print(f"tails, normal arms, the smaller arm the noisier ({5 * sims} data sets per cell), wrong REPRODUCED / alpha "
          f"at 0.05 / 0.01 / 0.002:")
    for na, nb in WELCH_TAILS:
        print(f"  {na} v {nb}: " + "; ".join(
            f"sd ratio {r:g}: " + " ".join(f"{c} " + "/".join(f"{x / a:.2f}" for x, a in zip(
                runs[c]["tails"][f"{na}|{nb}|{r:g}"], WELCH_ALPHAS)) for c in cols) for r in (2, 3, 5, 10)))
    print("power (greater), equal sds, normal, alpha 0.05: effect 0.5 / 1 / 2 sd of a difference of two runs")
    for na, nb in ((3, 5), (3, 8), (4, 8), (5, 10), (3, 3), (5, 5)):
        print(f"  {na} v {nb}: " + "; ".join(f"{c} " + "/".join(f"{runs[c]['power'][f'{na}|{nb}|{k:g}']:.2f}"
                                                               for k in (0.5, 1.0, 2.0)) for c in cols))


def _one_sample_rules(n):
    """The rules tried for skewed paired differences, as one-sample tests of "mean(d) > 0" on d (sims x n):
    each returns the claim-side statistic and its critical value at ALPHA (reject when statistic > critical)."""
    from scipy import stats as sps
    c0 = sps.t.ppf(1 - ALPHA, n - 1)

    def moments(d):
        m, s = d.mean(-1), d.std(-1, ddof=1)
        c = d - m[..., None]
        g1 = (c ** 3).mean(-1) / np.maximum((c ** 2).mean(-1), 1e-300) ** 1.5
        big_g = g1 * math.sqrt(n * (n - 1)) / (n - 2) if n > 2 else 0 * g1  # the bias-corrected sample skewness
        return m, s, big_g

    def plain(d):
        m, s, _ = moments(d)
        return m / (s / math.sqrt(n)), c0

    def johnson(d):  # Johnson (1978): t + G s / (6 n) + G (mean)^2 / (3 s), skewness estimated (bias-corrected)
        m, s, g = moments(d)
        return (m + g * s / (6 * n) + g * m * m / (3 * s)) / (s / math.sqrt(n)), c0

    def hall(d):  # Hall (1992): the monotone cubic transformation, skewness estimated (bias-corrected)
        m, s, g = moments(d)
        th = m / s
        a = g / 3
        return math.sqrt(n) * (th + a * th ** 2 + a * a * th ** 3 / 3 + g / (6 * n)), c0

    df_needed = {3: 1.59, 4: 2.16, 5: 2.57, 8: 3.47}  # the df at which the lognormal regime's t is at ALPHA

    def df_cut(d):
        m, s, _ = moments(d)
        return m / (s / math.sqrt(n)), sps.t.ppf(1 - ALPHA, df_needed[n])

    def se_factor(d):  # the rule chosen (repro.stats.skew_factor)
        m, s, _ = moments(d)
        return m / (s / math.sqrt(n)) / float(SS.skew_factor(n)), c0

    return {"t (before)": plain, "Johnson, G": johnson, "Hall, G": hall, "df cut": df_cut, "SE x skew_factor": se_factor}


def skew_alternatives(rng, sims):
    print("\n== skewed paired differences: the rules tried (one lognormal arm, sigma 1, against a normal arm of "
          "the same sd; level = wrong REPRODUCED on the side the skew favours / power at 1 sd, normal) ==")
    for n in (3, 4, 5, 8):
        rules = _one_sample_rules(n)
        liberal = -(lognormal(rng, (sims, n)) - rng.normal(0, 1, (sims, n)))  # "greater" is the favoured side
        other = -liberal
        effect = 1.0 * math.sqrt(2) + rng.normal(0, 1, (sims, n)) - rng.normal(0, 1, (sims, n))
        cells = []
        for name, fn in rules.items():
            rates = [float(np.mean(np.greater(*fn(x)))) for x in (liberal, other, effect)]
            cells.append(f"{name} {rates[0]:.4f}/{rates[1]:.4f}/{rates[2]:.2f}")
        print(f"{n} seeds (favoured / other side / power): " + "; ".join(cells))


def skew_table(rng, sims):
    """Issue 25 item 5, paired: wrong REPRODUCED per side (greater / less on the same data), with the paired t's
    standard error times skew_factor(n) (now) and without (before)."""
    print("\n== skew and the paired t: wrong REPRODUCED, worse side (greater / less), now (SE x skew_factor) | before ==")
    seeds = (2, 3, 4, 5, 8, 11, 20)
    print(f"{'differences (a - b per seed)':>44} | " + " | ".join(f"{n:>2} seeds" for n in seeds))

    def normal(r, s):
        return r.normal(0, 1, s)
    regimes = {
        "normal (paired arms, shared effect)": lambda r, s: (r.normal(0, 1, s) + (x := r.normal(0, 1, s)),
                                                            x + r.normal(0, 1, s)),
        "t3 arms": lambda r, s: (r.standard_t(3, s), r.standard_t(3, s)),
        "one lognormal arm sigma 0.25 v normal": lambda r, s: (lognormal(r, s, 0.25), normal(r, s)),
        "one lognormal arm sigma 0.5 v normal": lambda r, s: (lognormal(r, s, 0.5), normal(r, s)),
        "one lognormal arm sigma 1 v normal": lambda r, s: (lognormal(r, s, 1.0), normal(r, s)),
        "conditional: normal + lognormal 1 v one run": lambda r, s: (normal(r, s) + lognormal(r, s, 1.0),
                                                                     np.zeros(s)),
        "integer, sd 0.5 (lattice offset 0.25)": lambda r, s: (np.round(0.25 + (x := r.normal(0, .5, s)) + r.normal(0, .5, s)),
                                                               np.round(0.25 + x + r.normal(0, .5, s))),
        "integer, sd 1": lambda r, s: (np.round((x := r.normal(0, 1, s)) + r.normal(0, 1, s)),
                                       np.round(x + r.normal(0, 1, s))),
        "outside: conditional, pure lognormal 1 v one run": lambda r, s: (lognormal(r, s, 1.0), np.zeros(s)),
        "outside: lognormal 1 v normal of sd 0.5": lambda r, s: (lognormal(r, s, 1.0), 0.5 * normal(r, s)),
    }
    for name, draw in regimes.items():
        cells = []
        for n in seeds:
            a, b = draw(rng, (sims, n))
            pair = []
            for hedge in (True, False):
                with rule(hedge=hedge):
                    pair.append(max(supported("greater", {"a": a, "b": b}), supported("less", {"a": a, "b": b})))
            cells.append(f"{pair[0]:.3f}|{pair[1]:.3f}")
        print(f"{name:>44} | " + " | ".join(cells))
    print("power (greater, paired, normal differences): effect 0.5, 1, 2 sd of the differences, now | before")
    for n in (3, 5, 8, 11, 20):
        cells = []
        for hedge in (True, False):
            with rule(hedge=hedge):
                row = []
                for sd_units in (0.5, 1.0, 2.0):
                    shared = rng.normal(0, 1, (sims, n))
                    a = sd_units * math.sqrt(2) + shared + rng.normal(0, 1, (sims, n))
                    row.append(supported("greater", {"a": a, "b": shared + rng.normal(0, 1, (sims, n))}))
                cells.append("/".join(f"{p:.2f}" for p in row))
        print(f"{n:>2} seeds: now {cells[0]}, before {cells[1]}")


def sequential_ratio_table(rng, sims):
    print("\n== sequential at_least recovered_fraction with no gap to recover: wrong NOT REPRODUCED ==")
    chk = check("at_least", ["t", "s", "d"], derived="recovered_fraction", bound=0.5)
    for name, means in (("teacher 2 worse than small (D < 0)", (12, 10, 13)), ("no gap (D = 0)", (10, 10, 13))):
        shared = rng.normal(0, 1, (sims, 11))
        values = {arm: m + shared + rng.normal(0, 1, (sims, 11)) for arm, m in zip(("t", "s", "d"), means)}
        out = judge(values, chk, Design.of(5, 11, 2, ALPHA))
        fixed = CHECKS.get("at_least")({k: v[:, :5] for k, v in values.items()}, chk)
        print(f"{name}: sequential {np.mean(out['decision'] == 'refuted'):.4f}, "
              f"fixed 5 seeds {np.mean(np.asarray(fixed['decision']) == 'refuted'):.4f}")


def sequential_table(rng, sims):
    print("\n== group-sequential, paired greater: exact sequential p (now) against the union bound (before) ==")
    import repro.stats.sequential as SQ
    chk = check("greater", ["a", "b"])
    for first, cap, group, spending in ((5, 11, 2, "obf"), (3, 9, 2, "obf"), (3, 15, 1, "pocock")):
        design = Design.of(first, cap, group, ALPHA, spending)
        cells = {}
        for label, exact in (("now", None), ("before", lambda *a: (False, False))):
            saved = SQ.exact_sides
            if exact:
                SQ.exact_sides = exact
            try:
                row = []
                for sd_units in (0.0, 0.5, 1.0, 2.0):
                    shared = rng.normal(0, 1, (sims, cap))
                    values = {"a": sd_units * math.sqrt(2) + shared + rng.normal(0, 1, (sims, cap)),
                              "b": shared + rng.normal(0, 1, (sims, cap))}
                    row.append(float(np.mean(judge(values, chk, design)["decision"] == "supported")))
            finally:
                SQ.exact_sides = saved
            cells[label] = row
        print(f"looks {', '.join(map(str, design.looks))} ({spending}): null / power at 0.5, 1, 2 sd: "
              + "; ".join(f"{k} {v[0]:.4f} / {'/'.join(f'{x:.2f}' for x in v[1:])}" for k, v in cells.items()))


R2 = math.sqrt(2)  # the sd of a difference of two runs (and of one arm: the seed's effect plus its own noise)
S_RF = math.sqrt(0.5 ** 2 + 1 + 0.5 ** 2)  # the sd of a recovered fraction's per-seed contrast at bound 0.5
S_RC = math.sqrt(1 + 1.2 ** 2 + 0.2 ** 2)  # relative_change at bound 0.2 (paired: the shared effect weighs -0.2)
# name: (kind, arm layout ("v" varies, "c" one run reused for every seed), paired, k -> (means, keywords)): k = 0 is
# the least favourable null, k > 0 a true claim k sds of its tested quantity inside its boundary (TOST: the margin)
SKEW_KINDS = {
    "greater, paired": ("greater", "vv", True, lambda k: ([k * R2, 0], {})),
    "equivalent, paired": ("equivalent", "vv", True, lambda k: ([2.0, 0] if k == 0 else [0, 0], {"margin": 2.0 if k == 0 else k * R2})),
    "best_of, paired": ("best_of", "vvv", True, lambda k: ([0, k * R2, 50], {"better": "lower"})),
    "matches": ("matches", "v", True, lambda k: ([11.5] if k == 0 else [10.0], {"value": 10.0, "tolerance": 1.5 if k == 0 else k * R2})),
    "at_least mean": ("at_least", "v", True, lambda k: ([3 + k * R2], {"bound": 3.0})),
    "at_most mean": ("at_most", "v", True, lambda k: ([3 - k * R2], {"bound": 3.0})),
    "at_least difference, paired": ("at_least", "vv", True, lambda k: ([1 + k * R2, 0], {"derived": "difference", "bound": 1.0})),
    "at_most difference, paired": ("at_most", "vv", True, lambda k: ([1 - k * R2, 0], {"derived": "difference", "bound": 1.0})),
    "at_least recovered_fraction, paired": ("at_least", "vvv", True, lambda k: (
        [0, 10, 5 - k * S_RF], {"derived": "recovered_fraction", "bound": 0.5})),
    "at_least recovered_fraction, conditional": ("at_least", "cvv", True, lambda k: (
        [0, 10, 5 - k * S_RF], {"derived": "recovered_fraction", "bound": 0.5})),
    "at_least relative_change, paired": ("at_least", "vv", True, lambda k: (
        [12 + k * S_RC, 10], {"derived": "relative_change", "bound": 0.2})),
    "greater, Welch": ("greater", "vv", False, lambda k: ([k * R2, 0], {"paired": False})),
    "equivalent, Welch": ("equivalent", "vv", False, lambda k: (
        [2.0, 0] if k == 0 else [0, 0], {"margin": 2.0 if k == 0 else k * R2, "paired": False})),
    "best_of, Welch": ("best_of", "vvv", False, lambda k: ([0, k * R2, 50], {"better": "lower", "paired": False})),
    "at_least difference, Welch": ("at_least", "vv", False, lambda k: (
        [1 + k * R2, 0], {"derived": "difference", "bound": 1.0, "paired": False})),
    "at_least recovered_fraction, Welch": ("at_least", "vvv", False, lambda k: (
        [0, 10, 5 - k * S_RF], {"derived": "recovered_fraction", "bound": 0.5, "paired": False})),
}
SEQ_DESIGN = (3, 11, 2)  # looks at 3, 5, 7, 9, 11 seeds (O'Brien-Fleming); the worst of first looks 3 and 5 below


def _skew_draw(rng, sims, means, layout, paired, seeds, skewed=None, sign=1, sigma=1.0):
    shared = rng.normal(0, 1, (sims, seeds)) if paired else 0.0
    out = {}
    for i, (mean, kind) in enumerate(zip(means, layout)):
        if kind == "c":
            out[f"x{i}"] = np.full((sims, seeds), float(mean))
            continue
        noise = sign * lognormal(rng, (sims, seeds), sigma) if i == skewed else rng.normal(0, 1, (sims, seeds))
        out[f"x{i}"] = mean + shared + noise
    return out


def skew_kind_rates(sims: int) -> dict:
    """Per kind: the worst wrong-REPRODUCED rate at its least favourable null with one lognormal arm (sigma 0.5 or 1,
    either arm, skewed either way), fixed at 3, 4 and 5 seeds and sequential (looks 3/5..11), and the power with
    normal values at 0.5, 1 and 2 sd (fixed: 5 seeds; sequential: looks 3..11)."""
    rng = np.random.default_rng(20251207)
    out = {}
    for name, (kind, layout, paired, setup) in SKEW_KINDS.items():
        means, kw = setup(0)
        chk = check(kind, [f"x{i}" for i in range(len(means))], **kw)
        fixed, seq = 0.0, 0.0
        for skewed in [i for i, c in enumerate(layout) if c == "v"]:
            for sign in (1, -1):
                for sigma in (0.5, 1.0):
                    for n in (3, 4, 5):
                        v = _skew_draw(rng, sims, means, layout, paired, n, skewed, sign, sigma)
                        fixed = max(fixed, supported(kind, v, **kw))
                    for first in ((3, 5) if sigma == 1.0 else ()):  # sigma 0.5 is the milder edge (fixed tables)
                        v = _skew_draw(rng, sims // 2, means, layout, paired, SEQ_DESIGN[1], skewed, sign, sigma)
                        d = judge(v, chk, Design.of(first, SEQ_DESIGN[1], SEQ_DESIGN[2], ALPHA))["decision"]
                        seq = max(seq, float(np.mean(d == "supported")))
        power, power_seq = [], []
        for k in (0.5, 1.0, 2.0):
            means, kw = setup(k)
            chk = check(kind, [f"x{i}" for i in range(len(means))], **kw)
            power.append(supported(kind, _skew_draw(rng, sims, means, layout, paired, 5), **kw))
            v = _skew_draw(rng, sims // 2, means, layout, paired, SEQ_DESIGN[1])
            power_seq.append(float(np.mean(judge(v, chk, Design.of(*SEQ_DESIGN, ALPHA))["decision"] == "supported")))
        out[name] = {"fixed": fixed, "seq": seq, "power": power, "power_seq": power_seq}
    return out


def _rates_at(rev: str, sims: int, flag: str = "--kinds-json") -> dict:
    """skew_kind_rates (or, with flag --welch-json=VARIANT, welch_rates) with repro/ as it was at git revision `rev`
    (extracted to a temporary folder; this script runs there in a subprocess), for the before columns."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", root, "archive", rev, "repro"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        done = subprocess.run([sys.executable, os.path.abspath(__file__), flag, "--sims", str(sims)],
                              env={**os.environ, "PYTHONPATH": tmp}, check=True, capture_output=True, text=True, cwd=tmp)
    return json.loads(done.stdout)


BEFORE = "3c33943"  # the last commit before issue 33 (item 5)


def skew_kinds_table(rng, sims):
    print(f"\n== skew, every kind (issue 33): one lognormal arm (sigma 0.5 or 1, any arm, either sign), least favourable "
          f"null; wrong REPRODUCED, worst of 3-5 seeds (fixed) and of looks from 3 or 5 to 11 by 2 (sequential, sigma 1, "
          f"{sims // 2} data sets); power with normal values at 0.5 / 1 / 2 sd of the tested quantity (fixed: 5 seeds; "
          f"sequential: looks 3..11). before = {BEFORE} ==")
    before, now = _rates_at(BEFORE, sims), skew_kind_rates(sims)
    print(f"{'kind':>42} | {'level fixed':>13} | {'level seq':>13} | {'power fixed':>29} | {'power seq':>29}")
    print(f"{'':>42} | {'before  now':>13} | {'before  now':>13} | {'before':>14} {'now':>14} | {'before':>14} {'now':>14}")
    for name in SKEW_KINDS:
        b, n = before[name], now[name]
        fmt = lambda xs: "/".join(f"{x:.2f}" for x in xs)  # noqa: E731
        print(f"{name:>42} | {b['fixed']:.4f} {n['fixed']:.4f} | {b['seq']:.4f} {n['seq']:.4f} | "
              f"{fmt(b['power']):>14} {fmt(n['power']):>14} | {fmt(b['power_seq']):>14} {fmt(n['power_seq']):>14}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=20_000)
    parser.add_argument("--skew", action="store_true",
                        help="only the skew tables (a part of benchmarks/calibration.txt)")
    parser.add_argument("--kinds", action="store_true", help="only the skew table per kind (issue 33)")
    parser.add_argument("--integer", action="store_true", help="only the integer tables")
    parser.add_argument("--welch", action="store_true", help="only the Welch table (unequal sizes and variances)")
    parser.add_argument("--kinds-json", action="store_true", help=argparse.SUPPRESS)  # _rates_at's subprocess
    parser.add_argument("--welch-json", help=argparse.SUPPRESS)  # _rates_at's subprocess: before / hedge only
    args = parser.parse_args()
    if args.kinds_json:
        print(json.dumps(skew_kind_rates(args.sims)))
        return
    if args.welch_json:
        print(json.dumps(welch_rates(args.sims, args.welch_json)))
        return
    rng = np.random.default_rng(20251201)
    started = time.time()
    print(f"{args.sims} simulated data sets per cell (Monte Carlo half-width at 0.05: "
          f"{3 * math.sqrt(ALPHA * (1 - ALPHA) / args.sims):.4f})")
    tables = (skew_table, skew_alternatives) if args.skew else (skew_kinds_table,) if args.kinds else (
        integer_table, integer_limit_table) if args.integer else (welch_table,) if args.welch else (
        skew_kinds_table, integer_table, integer_limit_table, welch_table, skew_table, skew_alternatives,
        sequential_ratio_table, sequential_table)
    for table in tables:
        table(rng, args.sims)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
