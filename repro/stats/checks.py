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

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..registry import CHECKS

POWER = 0.8  # seeds_to_decide: the power at which a decision counts as reachable
SEEDS_CAP = 10_000  # beyond this, seeds_to_decide is None ("no practical number of seeds")
EXACT_LIMIT = 4096  # permutation tests enumerate up to this many arrangements (sign flips: n <= 12 seeds) ...
MC_PERMUTATIONS = 1999  # ... else draw this many with a fixed seed (p floor 1/2000)
# A standard deviation at or below this share of the values' magnitude is no spread at all (float noise):
# the seeds agree, and no t test (nor any other) can then tell a certainty from too few distinct runs.
SPREAD_TOL = 1e-9


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


# --- building blocks (all vectorised over leading axes; the last axis is seeds) ------------------

def _var(x: np.ndarray) -> np.ndarray:
    if x.shape[-1] < 2:
        return np.full(x.shape[:-1], np.nan)
    return x.var(axis=-1, ddof=1)


def _p_above(num, se, df, no_spread=False):
    """One-sided t test that the quantity estimated by `num` (standard error `se`, `df`) is > 0.

    Returns (p, t). Without spread (se 0, or `no_spread`: the seeds agree) there is no valid test: NaN,
    never p = 0, so the decision is undecided rather than a certainty no correction could demote.
    """
    num, se, df, no_spread = np.broadcast_arrays(*(np.asarray(x, float) for x in (num, se, df)),
                                                 np.asarray(no_spread, bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / se
        p = sps.t.sf(t, df)
    bad = np.isnan(num) | ~(se > 0) | no_spread
    return np.where(bad, np.nan, p), np.where(bad, np.nan, t)


def _rounding_var(*xs: np.ndarray) -> np.ndarray:
    """h^2 / 24 with h = 1 where every value is an integer (counts such as test errors, epochs), else 0.

    Not Sheppard's correction (which subtracts h^2/12 to estimate the unrounded variance; the test here is on the
    rounded values, whose sample variance already carries the rounding). It is a small-sample tie allowance:
    with a spread of about one unit, ties make the sample variance too small too often, and the paired t test
    rejects a true null in 0.061 of data sets at alpha 0.05 (sd 0.7, 5 seeds). Half the rounding variance per
    value is the smallest allowance found that keeps every simulated regime (spread 0.3-3, 3-5 seeds, lattice
    offsets 0-0.5) at or below alpha (0.050 at most, 20k data sets each), and it keeps most of the power that
    the whole h^2/12 cost: 0.43 against 0.29 at 1 sd, spread 0.5 and 5 seeds, where none gives 0.53
    (benchmarks/calibration.py prints the table). Against a spread of several units it changes nothing that
    matters. It is decided on the values' own scale: a count divided by a constant (epochs / 15) is not
    recognised as one, and is tested as a real-valued metric."""
    integral = np.all(np.stack([np.all(x == np.round(x), -1) for x in xs], 0), 0)
    return np.where(integral, 1 / 24, 0.0)


def _scale(*xs: np.ndarray) -> np.ndarray:
    """The values' magnitude (the largest |value| per data set), for SPREAD_TOL."""
    return np.max(np.stack([np.max(np.abs(x), -1) for x in xs], 0), 0)


def _quantile(alpha: float, df) -> np.ndarray:
    return sps.t.ppf(1 - alpha, np.asarray(df, float))


def _difference(a: np.ndarray, b: np.ndarray, paired: bool) -> dict:
    """Mean difference a - b: paired t on per-seed differences, or Welch's unequal-variance t.

    sd_unit: se = sd_unit / sqrt(n) with n seeds per arm (for seeds_to_decide); sd_effect standardises
    the effect size (sd of the differences when paired, pooled sd otherwise). no_spread: the per-seed
    differences (paired) or an arm (unpaired) do not vary, so the spread is unmeasured and nothing is tested.
    """
    q, tiny = _rounding_var(a, b), (SPREAD_TOL * _scale(a, b)) ** 2
    if paired:
        if a.shape[-1] != b.shape[-1]:
            raise ValueError(f"paired: the arms have different numbers of seeds ({a.shape[-1]}, {b.shape[-1]})")
        d = a - b
        n = d.shape[-1]
        raw = _var(d)
        sd = np.sqrt(raw + 2 * q)
        return {"diff": d.mean(-1), "se": sd / math.sqrt(n) * skew_factor(n), "df": np.full(sd.shape, n - 1.0),
                "sd_unit": sd, "sd_effect": sd, "no_spread": ~(raw > tiny)}
    na, nb = a.shape[-1], b.shape[-1]
    no_spread = ~(np.minimum(_var(a), _var(b)) > tiny)
    va_raw, vb_raw = _var(a) + q, _var(b) + q
    va, vb = va_raw / na, vb_raw / nb
    se = np.sqrt(va + vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    df = _unequal_sizes_df(np.where(se == 0, na + nb - 2.0, df), [na, nb])
    return {"diff": a.mean(-1) - b.mean(-1), "se": se, "df": df, "no_spread": no_spread,
            "sd_unit": np.sqrt(va_raw + vb_raw), "sd_effect": np.sqrt((va_raw + vb_raw) / 2)}


SKEW_BASE, SKEW_SMALL_N = 1.155, 0.15  # skew_factor(n) = SKEW_BASE + SKEW_SMALL_N / n


def skew_factor(n) -> np.ndarray:
    """The paired t's standard error is this many times sd / sqrt(n) (1.205 at 3 seeds, 1.185 at 5, 1.163 at 20):
    a hedge against skewed per-seed differences, for every paired check (greater, less, equivalent, best_of) and
    so for the conditional test against one run reused for every seed, the same one-sample t on the differences.

    Why: a skewed sample's mean and variance are correlated, so samples drawn from the bulk have their mean on the
    short tail's side and a small variance at once, and the t test is liberal on the side the skew favours (one
    lognormal arm of sigma 1: about 0.07 wrong REPRODUCED at every n). No estimate of skewness mends it at these
    n (the falsely rejecting samples have the same sample skewness as true effects), so the widening is flat, on
    both sides, as wide as that regime needs at every level from 0.05 down to Holm's 0.002. The class the level
    is held over, the price in power and the rules tried: README ("Small samples, unequal variances and skew")
    and benchmarks/calibration.txt."""
    return SKEW_BASE + SKEW_SMALL_N / np.asarray(n, float)


DF_SHRINK = 0.25  # _unequal_sizes_df: the share of Satterthwaite's df above the smallest arm's n - 1 kept ...
SMALL_ARM = 4  # ... where the smaller arm has at most this many seeds


def _unequal_sizes_df(df, sizes: list[int]):
    """Satterthwaite's df for arms of different sizes, moved most of the way down to Hsu's min(n) - 1.

    With 3 seeds against 8 and the smaller arm the noisier (sd 2-3 against 1), the Satterthwaite df is
    overestimated whenever the small arm's variance happens to come out small, and Welch's test rejects a true
    null in 0.058-0.060 of data sets at alpha 0.05; Hsu's df = min(n) - 1 keeps every variance ratio at or below
    alpha but costs a third of the power at equal variances (0.64 -> 0.45, 3 v 8 at 2.5 se). Keeping a quarter
    of the excess (DF_SHRINK) holds the worst case simulated (3-5 seeds against 5-12, sd ratios 1-5) at 0.050
    and keeps most of the power (0.55; benchmarks/calibration.py). Equal sizes keep Satterthwaite's df: there
    Welch's test holds its level (0.050-0.052 at 3 v 3 and 5 v 5, sd ratio 3), and so does it from 5 seeds in the
    smaller arm (0.049-0.054 at 5-6 against 6-15, sd ratios 1.5-5, 40k data sets each: within Monte Carlo error
    of Welch's own slight excess), where it keeps Satterthwaite's df too."""
    if len(set(sizes)) < 2 or min(sizes) > SMALL_ARM:
        return df
    low = min(sizes) - 1.0
    return low + (np.asarray(df, float) - low) * DF_SHRINK


@functools.lru_cache(maxsize=64)
def _t_sums(alpha: float, power: float, welch: bool, hedge: bool = False) -> np.ndarray:
    """(t_{1-alpha} + t_{power}) / sqrt(n) for n = 2 .. 1201 seeds per arm (df n-1, or 2n-2 for Welch); with
    `hedge` (the paired t) t_{1-alpha} is times skew_factor(n)."""
    n = np.arange(2, 1202)
    df = 2 * (n - 1) if welch else n - 1
    return (sps.t.ppf(1 - alpha, df) * (skew_factor(n) if hedge else 1.0) + sps.t.ppf(power, df)) / np.sqrt(n)


def _seeds_needed(distance, sd_unit, alpha: float, welch: bool = False, power: float = POWER,
                  hedge: bool = False) -> np.ndarray:
    """Smallest n (seeds per arm) with (t_{1-alpha} + t_{power}) sd_unit / sqrt(n) <= distance: how many
    seeds decide, with `power`, a true effect `distance` away from the decision's boundary (the normal
    approximation, refined with t quantiles up to 1201 seeds). NaN where distance <= 0 or sd is undefined,
    or where more than SEEDS_CAP seeds would be needed."""
    distance, sd = np.broadcast_arrays(np.asarray(distance, float), np.asarray(sd_unit, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = distance / sd  # the t sums must fall to this
        z = sps.norm.ppf(1 - alpha) * (SKEW_BASE if hedge else 1.0) + sps.norm.ppf(power)
        normal = np.ceil((z / ratio) ** 2)
    sums = _t_sums(float(alpha), float(power), bool(welch), bool(hedge))
    idx = np.searchsorted(-sums, -np.where(np.isnan(ratio), 0, ratio), side="left")
    n = np.where(idx < len(sums), np.minimum(idx, len(sums) - 1) + 2, np.maximum(normal, len(sums) + 2))
    ok = (distance > 0) & (sd >= 0) & (n <= SEEDS_CAP)
    return np.where(ok, n, np.nan)


def _seeds_all(distances: list, sds: list, alpha: float, welch: bool, power: float = POWER,
               hedge: bool = False) -> np.ndarray:
    """Smallest n (seeds per arm) with which several one-sided tests at `alpha` all pass together with
    `power` (true effects `distances` from their boundaries, per-seed sds `sds`): their misses, each
    P(T_df < t_{1-alpha} - distance sqrt(n) / sd), may sum to at most 1 - power (Bonferroni; nearly exact
    for TOST's two sides, a little conservative for best_of's correlated pairs). One test: _seeds_needed.
    NaN where some distance <= 0 or sd is undefined, or beyond SEEDS_CAP."""
    d = np.stack(np.broadcast_arrays(*[np.asarray(x, float) for x in distances]), -1)
    sd = np.stack(np.broadcast_arrays(*[np.asarray(x, float) for x in sds]), -1)
    d, sd = np.broadcast_arrays(d, sd)
    ok = np.all(d > 0, -1) & np.all(sd >= 0, -1)
    d, sd = np.where(ok[..., None], d, 1.0), np.where(ok[..., None], sd, 1.0)

    def misses(n):
        df = (2 * (n - 1) if welch else n - 1)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = d / sd * np.sqrt(n)[..., None] - sps.t.ppf(1 - alpha, df) * (skew_factor(n)[..., None] if hedge else 1.0)
        return np.sum(sps.t.sf(np.where(np.isnan(x), np.inf, x), df), -1)

    lo, hi = np.full(ok.shape, 2.0), np.full(ok.shape, float(SEEDS_CAP))
    reachable = misses(hi) <= 1 - power
    while np.any(lo < hi):
        mid = np.floor((lo + hi) / 2)
        good = misses(mid) <= 1 - power
        hi, lo = np.where(good, mid, hi), np.where(good, lo, mid + 1)
    return np.where(ok & reachable, lo, np.nan)


def seeds_to_decide(distance: float, sd_unit: float, alpha: float, welch: bool = False,
                    power: float = POWER, hedge: bool = False) -> int | None:
    """Scalar form of _seeds_needed."""
    n = float(_seeds_needed(distance, sd_unit, alpha, welch, power, hedge))
    return None if math.isnan(n) else int(n)


def _permutation_p(x: np.ndarray, weights: np.ndarray, exact: bool) -> np.ndarray:
    """p of statistic x @ w[0] against the arrangements in `weights` (one per row; row 0 of an exact set
    is the observed one): the share of arrangements at least as large, as scipy.stats.permutation_test
    counts them (with its relative tolerance for ties; Monte Carlo adds the observed one)."""
    observed = x @ weights[0]
    gamma = np.abs(observed) * np.finfo(float).eps * 100
    flat, obs, gam = x.reshape(-1, x.shape[-1]), observed.reshape(-1), gamma.reshape(-1)
    count = np.empty(len(flat))
    chunk = max(1, 2_000_000 // len(weights))
    for start in range(0, len(flat), chunk):
        null = flat[start:start + chunk] @ weights.T
        count[start:start + chunk] = (null >= (obs - gam)[start:start + chunk, None]).sum(-1)
    # exact: count / arrangements; Monte Carlo: row 0 is the observed arrangement, so this is (k + 1) / (B + 1)
    return (count / len(weights)).reshape(observed.shape)


@functools.lru_cache(maxsize=64)
def _sign_flips(n: int) -> tuple[np.ndarray, bool]:
    if 2 ** n <= EXACT_LIMIT:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)  # row 0: no flips
        return signs / n, True
    rng = np.random.default_rng(20190725)
    signs = np.vstack([np.ones(n), rng.choice([-1.0, 1.0], size=(MC_PERMUTATIONS, n))])
    return signs / n, False


def sign_flip(d) -> dict:
    """One-sided sign-flip permutation test of "the per-seed values d are centred above 0" (paired data;
    exact under symmetry about 0). Floor: 1 / 2^n exactly (3 seeds: 0.125), 1/2000 by Monte Carlo."""
    d = np.asarray(d, float)
    weights, exact = _sign_flips(d.shape[-1])
    return {"test": "sign-flip permutation" + ("" if exact else " (Monte Carlo)"),
            "p": _permutation_p(d, weights, exact), "p_floor": 1 / len(weights),
            "exact": exact, "n_permutations": len(weights) - (0 if exact else 1)}


@functools.lru_cache(maxsize=64)
def _splits(na: int, nb: int) -> tuple[np.ndarray, bool]:
    total = na + nb
    if math.comb(total, na) <= EXACT_LIMIT:
        masks = np.zeros((math.comb(total, na), total), bool)
        for i, chosen in enumerate(itertools.combinations(range(total), na)):  # first one: the observed split
            masks[i, list(chosen)] = True
        exact = True
    else:
        rng = np.random.default_rng(20190725)
        order = np.argsort(rng.random((MC_PERMUTATIONS, total)), axis=1) < na
        masks = np.vstack([np.arange(total) < na, order])
        exact = False
    return np.where(masks, 1 / na, -1 / nb), exact


def two_sample_permutation(a, b) -> dict:
    """One-sided permutation test of "mean(a) > mean(b)" over every split of the pooled runs (exact under
    exchangeability). Floor: 1 / C(na + nb, na) (3 vs 3: 1/20 = 0.05, so it never gets below 0.05)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    weights, exact = _splits(a.shape[-1], b.shape[-1])
    pooled = np.concatenate([a, b], -1)
    return {"test": "two-sample permutation" + ("" if exact else " (Monte Carlo)"),
            "p": _permutation_p(pooled, weights, exact), "p_floor": 1 / len(weights),
            "exact": exact, "n_permutations": len(weights) - (0 if exact else 1)}


def _companion_max(parts: list[dict]) -> dict:
    """Intersection-union of companion tests: the largest p; the floor is the largest floor."""
    return {"test": parts[0]["test"] + (f" (largest of {len(parts)})" if len(parts) > 1 else ""),
            "p": np.max(np.stack([np.asarray(c["p"], float) for c in parts], -1), -1),
            "p_floor": max(c["p_floor"] for c in parts), "exact": all(c["exact"] for c in parts),
            "n_permutations": min(c["n_permutations"] for c in parts)}


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
    p, t = _p_above(e, r["se"], r["df"], r["no_spread"])
    p_ref, _ = _p_above(margin - e, r["se"], r["df"], r["no_spread"])
    half = _quantile(alpha, r["df"]) * r["se"]
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = r["diff"] / r["sd_effect"]
    comp = sign_flip(sign * (a - b)) if paired else two_sample_permutation(sign * a, sign * b)
    return {"label": label, "p": p, "p_refute": p_ref, "statistic": sign * t, "df": r["df"],
            "estimate": r["diff"], "estimate_ci": (r["diff"] - half, r["diff"] + half), "reference": 0.0,
            "effect_size": effect, "se": r["se"], "companion": comp, "no_spread": r["no_spread"],
            "sides": [e], "sd_unit": r["sd_unit"], "welch": not paired, "hedge": paired,
            "seeds_support": _seeds_needed(e, r["sd_unit"], alpha, not paired, hedge=paired),
            "seeds_refute": _seeds_needed(margin - e, r["sd_unit"], alpha, not paired, hedge=paired)}


def _tost_part(estimate, se, df, sd_unit, margin, alpha, alpha_refute, welch, label, reference, companion,
               no_spread, hedge: bool = False) -> dict:
    """TOST: |estimate - reference| < margin. estimate has standard error se with df.

    Refuting it (|true - reference| >= margin) is the union of two one-sided tests, e > margin or
    e < -margin: each at half the level (p_refute = 2 x the smaller p), so that when the margin is small
    against the standard error the two sides together still refute a true claim at most alpha of the
    time (each side at alpha would reach 2 alpha). Dual: refuted iff the two-sided (1 - alpha) interval
    lies outside the band."""
    e = estimate - reference
    p_low, t_low = _p_above(e + margin, se, df, no_spread)  # H1: e > -margin
    p_upp, t_upp = _p_above(margin - e, se, df, no_spread)  # H1: e < +margin
    p = np.maximum(p_low, p_upp)
    p_out = np.minimum(1.0, 2 * np.fmin(_p_above(e - margin, se, df, no_spread)[0],
                                        _p_above(-margin - e, se, df, no_spread)[0]))
    half = _quantile(alpha, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = e / (sd_unit / math.sqrt(2) if welch else sd_unit)
    distance = margin - np.abs(e)
    return {"label": label, "p": p, "p_refute": p_out, "statistic": np.where(p_low >= p_upp, t_low, -t_upp),
            "df": df, "estimate": estimate, "estimate_ci": (estimate - half, estimate + half),
            "reference": reference, "effect_size": effect, "se": se, "companion": companion, "no_spread": no_spread,
            "sides": [margin - e, margin + e], "sd_unit": sd_unit, "welch": welch, "hedge": hedge,  # both must pass
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
        "no_spread": no_spread,
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
    return _combine([part], check.alpha, batch, test=("paired t" if paired else "Welch t") + " (one-sided)",
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
                                hedge=paired))
    return _combine(parts, alpha, batch, test=("TOST paired t" if paired else "TOST Welch t"), paired=paired,
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
        parts.append(_tost_part(x.mean(-1), sd / math.sqrt(n), np.full(sd.shape, n - 1.0), sd, tol, alpha,
                                alpha / len(xs), False, f"mean({arm})", float(target), comp,
                                ~(raw > (SPREAD_TOL * _scale(x)) ** 2)))
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
    test = ("paired t" if paired else "Welch t") + f" (one-sided, largest of {len(xs) - top})"
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
        den_constant = has_den & ~(_var(den_i) > tiny) & (q == 0)
        no_spread = ~(_var(lin_i) > tiny * (1 + b * b)) | (has_den & ~(_var(den_i) > tiny) & ~den_constant)
        with np.errstate(invalid="ignore"):
            cov = ((num_i - num[..., None]) * (den_i - den[..., None])).sum(-1) / (n - 1) if n > 1 else np.nan
        a0, a1, a2 = (_var(num_i) + (cn @ cn) * q) / n, (cov + (cn @ cd) * q) / n, (_var(den_i) + (cd @ cd) * q) / n
        se_l, df_l = sd_l / math.sqrt(n), np.full(np.shape(num), n - 1.0)
        se_d, df_d = np.sqrt(a2), df_l
        sd_unit = sd_l
    else:
        means = [x.mean(-1) for x in xs]
        no_spread = ~(np.min(np.stack([_var(x) for x in xs], 0), 0) > tiny)
        raw = [_var(x) + q for x in xs]
        v = [r / x.shape[-1] for r, x in zip(raw, xs)]
        ns = [x.shape[-1] for x in xs]
        num = sum(c * m for c, m in zip(cn, means))
        den = sum(c * m for c, m in zip(cd, means)) + d0

        def satterthwaite(c):
            var = sum(ci ** 2 * vi for ci, vi in zip(c, v))
            with np.errstate(divide="ignore", invalid="ignore"):
                df = var ** 2 / sum((ci ** 2 * vi) ** 2 / (ni - 1) for ci, vi, ni in zip(c, v, ns) if ci)
            return np.sqrt(var), _unequal_sizes_df(np.where(var == 0, sum(ns) - len(ns), df),
                                                   [ni for ci, ni in zip(c, ns) if ci])

        a0 = sum(c ** 2 * vi for c, vi in zip(cn, v))
        a1 = sum(c * e * vi for c, e, vi in zip(cn, cd, v))
        a2 = sum(c ** 2 * vi for c, vi in zip(cd, v))
        se_l, df_l = satterthwaite(cn - b * cd)
        se_d, df_d = satterthwaite(cd) if has_den else (np.zeros(np.shape(num)), df_l)
        sd_unit = np.sqrt(sum((c ** 2) * r for c, r in zip(cn - b * cd, raw)))
    lin = num - b * den
    p_l, t_l = _p_above(lin, se_l, df_l, no_spread)
    p_l_ref, _ = _p_above(-lin, se_l, df_l, no_spread)
    p_d, t_d = _p_above(den, se_d, df_d, no_spread) if has_den else (np.zeros(np.shape(lin)), np.full(np.shape(lin), np.inf))
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
    # Fieller: {f : (N - f D)^2 <= q^2 (a0 - 2 f a1 + f^2 a2)}, q at the contrast's df
    q = _quantile(alpha, df_l)
    qa, qb, qc = den ** 2 - q ** 2 * a2, num * den - q ** 2 * a1, num ** 2 - q ** 2 * a0
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(qb ** 2 - qa * qc, 0))
        lo, hi = (qb - root) / qa, (qb + root) / qa
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
    out = {"test": ("paired t" if paired else "Welch t") + " on N - bound x D" + (" and on D" if has_den else ""),
           "paired": paired, "hypothesis": f"{label} >= {b:g}", "formula": spec.formula,
           "estimand": label, "estimate": f, "estimate_ci": (lo, hi), "diff": f - b, "ci": (lo - b, hi - b),
           "ci_level": 1 - 2 * alpha, "reference": b,
           "statistic": np.where(l_binds, t_l, t_d), "df": np.where(l_binds, df_l, df_d), "p": p,
           "p_refute": p_refute, "effect_size": effect,
           "decision": np.where(supported, "supported", np.where(refuted, "refuted", "undecided")),
           "seeds_support": np.where(no_spread, np.nan, _seeds_needed(lin, sd_unit, alpha, not paired)),
           "seeds_refute": np.where(no_spread, np.nan, _seeds_needed(-lin, sd_unit, alpha, not paired)),
           "companion": comp, "numerator": num, "denominator": den, "no_spread": no_spread}
    out["seeds_to_decide"] = np.fmin(out["seeds_support"], out["seeds_refute"])
    return _finish(out, batch)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    finite = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    m, adjusted, running = len(finite), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


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
