"""Small-sample tests and their corrections: t statistics with the skew hedge, the rounding term for integer
metrics and Hsu's guard for Welch at unequal sizes, exact permutation companions, and the seeds a decision would need.
All vectorised over leading axes; the last axis is seeds."""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from scipy import stats as sps

POWER = 0.8  # seeds_to_decide: the power at which a decision counts as reachable
SEEDS_CAP = 10_000  # beyond this, seeds_to_decide is None ("no practical number of seeds")
EXACT_LIMIT = 4096  # permutation tests enumerate up to this many arrangements (sign flips: n <= 12 seeds) ...
MC_PERMUTATIONS = 1999  # ... else draw this many with a fixed seed (p floor 1/2000)
# A standard deviation at or below this share of the values' magnitude is no spread at all (float noise):
# the seeds agree, and no t test (nor any other) can then tell a certainty from too few distinct runs.
SPREAD_TOL = 1e-9



def _var(x: np.ndarray) -> np.ndarray:
    if x.shape[-1] < 2:
        return np.full(x.shape[:-1], np.nan)
    return x.var(axis=-1, ddof=1)


def _p_above(num, se, df, no_spread=False, guard=None):
    """One-sided t test that the quantity estimated by `num` (standard error `se`, `df`) is > 0.

    Returns (p, t). Without spread (se 0, or `no_spread`: the seeds agree) there is no valid test: NaN,
    never p = 0, so the decision is undecided rather than a certainty no correction could demote.
    `guard`: a second (se, df) the estimate must clear as well (Welch at unequal sizes: _hsu_guard); p is then
    the larger of the two p-values, t stays num / se.
    """
    num, se, df, no_spread = np.broadcast_arrays(*(np.asarray(x, float) for x in (num, se, df)),
                                                 np.asarray(no_spread, bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / se
        p = sps.t.sf(t, df)
        if guard is not None:
            p = np.fmax(p, sps.t.sf(num / np.asarray(guard[0], float), np.asarray(guard[1], float)))
    bad = np.isnan(num) | ~(se > 0) | no_spread
    return np.where(bad, np.nan, p), np.where(bad, np.nan, t)


TIE_ALLOWANCE = 0.0  # _rounding_var: variance added per integer value (1/24 before issue 33, 1/12 before issue 25)


def _rounding_var(*xs: np.ndarray) -> np.ndarray:
    """TIE_ALLOWANCE where every value is an integer (counts such as test errors, epochs), else 0: now none.

    Not Sheppard's correction (which subtracts h^2/12 to estimate the unrounded variance; the test here is on the
    rounded values, whose sample variance already carries the rounding, so a rounding term may only be a
    small-sample tie allowance). With a spread of about one unit, ties make the sample variance too small too
    often, and the unhedged paired t rejected a true null in 0.061 of data sets at alpha 0.05 (sd 0.7, 5 seeds),
    which h^2/24 per value mended. Every kind's t now carries the skew hedge (skew_factor), which widens the same
    tied samples' intervals more than the allowance did: without any allowance the worst integer regime simulated
    (spread 0.3-2, 3-5 seeds, lattice offsets 0-0.5; paired and Welch) is at 0.033, and the allowance on top of
    the hedge only costs power (Welch 5 v 5, spread 0.5, 1 sd: 0.22 with it, 0.27 without;
    benchmarks/calibration.py, "integer metrics"). So it is zero; the function stays the one place a count is
    recognised, decided on the values' own scale (a count divided by a constant is tested as real-valued)."""
    return np.where(_integral(*xs), TIE_ALLOWANCE, 0.0)


def _integral(*xs: np.ndarray) -> np.ndarray:
    """Per data set: every value of every arm is an integer (a count)."""
    return np.all(np.stack([np.all(x == np.round(x), -1) for x in xs], 0), 0)


def _scale(*xs: np.ndarray) -> np.ndarray:
    """The values' magnitude (the largest |value| per data set), for SPREAD_TOL."""
    return np.max(np.stack([np.max(np.abs(x), -1) for x in xs], 0), 0)


def _quantile(alpha: float, df) -> np.ndarray:
    return sps.t.ppf(1 - alpha, np.asarray(df, float))


def _half(alpha: float, se, df, guard=None) -> np.ndarray:
    """The one-sided (1 - alpha) interval's half-width: t_{1-alpha, df} se, or the larger of that and the guard's
    (so that the interval excludes a value exactly when _p_above with the same guard rejects it at alpha)."""
    half = _quantile(alpha, df) * np.asarray(se, float)
    if guard is not None:
        half = np.fmax(half, _quantile(alpha, guard[1]) * np.asarray(guard[0], float))
    return half


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
                "sd_unit": sd, "sd_effect": sd, "no_spread": ~(raw > tiny), "skew_share": W_PAIRED, "guard": None}
    na, nb = a.shape[-1], b.shape[-1]
    no_spread = ~(np.minimum(_var(a), _var(b)) > tiny)
    va_raw, vb_raw = _var(a) + q, _var(b) + q
    va, vb = va_raw / na, vb_raw / nb
    se = np.sqrt(va + vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    factor, share = welch_skew([1, -1], [na, nb])
    return {"diff": a.mean(-1) - b.mean(-1), "se": se * factor, "df": np.where(se == 0, na + nb - 2.0, df),
            "no_spread": no_spread, "skew_share": share, "guard": _hsu_guard(se, [na, nb]),
            "sd_unit": np.sqrt(va_raw + vb_raw), "sd_effect": np.sqrt((va_raw + vb_raw) / 2)}


SKEW_BASE, SKEW_SMALL_N = 1.155, 0.15  # skew_factor(n) = SKEW_BASE + SKEW_SMALL_N / n at the paired share W_PAIRED
W_PAIRED = 1 / math.sqrt(2)  # one arm's share of the sd of a difference of two arms of equal sd
SKEW_SHARE_POWER = 0.4  # _skew_weight: how fast the hedge grows as one arm's share of the sd nears 1
SKEW_SHARE_CAP = 0.95  # shares above this are hedged as this (only Welch with very unequal sizes gets there)


def _skew_weight(w) -> np.ndarray:
    """How much of the paired hedge's excess over 1 a tested quantity needs when one skewed arm carries the share
    w of its sd: k / k0 x ((1 - k0) / (1 - k)) ^ SKEW_SHARE_POWER with k = w^3 (the skewness the quantity inherits
    from that arm, per unit of the arm's own) and k0 = W_PAIRED^3, so 1 at the paired share. Fitted to the factors
    that put a one-sample t at alpha with one lognormal (sigma 1) component of share w, 2-20 seeds, alpha 0.05 down
    to 0.002: 0.38 / 1 / 1.6-1.7 / 2.6-2.8 needed at w 0.5 / 0.71 / 0.82 / 0.9; this gives 0.31 / 1 / 1.77 / 2.92
    (benchmarks/calibration.py, "skew share")."""
    k = np.minimum(np.asarray(w, float), SKEW_SHARE_CAP) ** 3
    k0 = W_PAIRED ** 3
    return k / k0 * ((1 - k0) / (1 - k)) ** SKEW_SHARE_POWER


def skew_factor(n, w=W_PAIRED) -> np.ndarray:
    """The t statistic's standard error is this many times sd / sqrt(n) (paired: 1.205 at 3 seeds, 1.185 at 5,
    1.163 at 20): a hedge against one skewed arm, for every check kind. `w` is the largest share of the tested
    quantity's sd that one arm can carry (skew_share, welch_skew): 1/sqrt(2) for a difference of two arms
    (greater, less, equivalent, best_of, at_least difference) and for one arm's mean (matches, at_least mean: the
    seed's effect and the arm's own noise), 0.82 for a recovered fraction at bound 0.5; the factor is then
    1 + (SKEW_BASE - 1 + SKEW_SMALL_N / n) x _skew_weight(w).

    Why: a skewed sample's mean and variance are correlated, so samples drawn from the bulk have their mean on the
    short tail's side and a small variance at once, and the t test is liberal on the side the skew favours (one
    lognormal arm of sigma 1: about 0.07 wrong REPRODUCED at every n for a difference, 0.09 for a recovered
    fraction, whose per-seed contrast weighs the distilled arm twice as much as the others). No estimate of
    skewness mends it at these n (the falsely rejecting samples have the same sample skewness as true effects), so
    the widening is flat, on both sides, as wide as the class needs at every level from 0.05 down to Holm's 0.002.
    The class (one arm lognormal, sigma <= 1, every arm of the same sd, the seed's own effect of that sd too), the
    price in power and the rules tried: docs/statistics.md ("Small samples, unequal variances and skew") and
    benchmarks/calibration.txt."""
    n = np.asarray(n, float)
    return 1 + (SKEW_BASE - 1 + SKEW_SMALL_N / n) * _skew_weight(w)


def skew_share(coefficients, varying=None) -> np.ndarray:
    """The largest share of the sd of sum_k c_k x_k (per seed, arms paired by seed) that one arm's own noise carries,
    when every varying arm is a seed effect shared by all arms plus its own noise, both of one sd:
    max_k |c_k| / sqrt(sum_k c_k^2 + (sum_k c_k)^2) over the varying arms (`varying`: a boolean per arm, or
    per data set x arm; an arm that is one run reused for every seed is a constant and carries nothing).
    A difference: 1/sqrt(2); one arm's mean: 1/sqrt(2); recovered fraction at bound b: 1/sqrt(1 + b^2 + (1-b)^2)."""
    c = np.asarray(coefficients, float)
    v = np.ones(c.shape, bool) if varying is None else np.asarray(varying, bool)
    cv = np.where(v, c, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.max(np.abs(cv), -1) / np.sqrt(np.sum(cv ** 2, -1) + np.sum(cv, -1) ** 2)
    return np.where(np.isnan(w), W_PAIRED, w)


def welch_skew(coefficients, sizes) -> tuple[float, float]:
    """Welch's hedge for sum_k c_k mean(x_k) of independent arms: the largest skew_factor(n_k, w_k) over the arms,
    with w_k = |c_k| / sqrt(n_k) / sqrt(sum_i c_i^2 / n_i) the share of the estimate's sd that arm k's noise
    carries at equal sds (a skewed arm of n_k seeds makes the estimate as skewed as a one-sample mean of n_k values
    with that share). Returns (factor, the share that set it)."""
    c, n = np.asarray(coefficients, float), np.asarray(sizes, float)
    keep = c != 0
    c, n = c[keep], n[keep]
    w = np.abs(c) / np.sqrt(n) / math.sqrt(float(np.sum(c ** 2 / n)))
    f = skew_factor(n, w)
    k = int(np.argmax(f))
    return float(f[k]), float(w[k])


SMALL_ARM = 4  # _hsu_guard: Welch whose smaller arm has at most this many seeds


def _hsu_guard(se, sizes: list[int]):
    """Welch with a smaller arm of at most SMALL_ARM seeds: (se, Hsu's df = min(n) - 1), a second
    t its estimate must clear (_p_above takes the larger p, _half the wider interval); else None. `se` is the
    unhedged standard error, `sizes` those of the arms in the estimate (a contrast: those with a coefficient).

    Why: Satterthwaite's df is itself estimated, from the few seeds of the smaller arm. When that arm is the
    noisier one and its variance comes out small by chance, the df comes out large and the t large at once, and
    Welch's t rejects a true null too often in the tails. Normal arms, 3 seeds at 5 times the sd of 8 others, with
    the skew hedge and Satterthwaite's df alone: 0.60 / 0.94 / 2.13 x alpha at alpha 0.05 / 0.01 / 0.002 (Holm's
    level for 25 claims; 3 v 5: 1.07 x at 0.01; recovered fractions up to 3 x at 0.002). Hsu's df, the smaller
    arm's own n - 1, is the bound that holds for normal arms at every variance ratio and level (tight as the ratio
    grows). So the hedged Satterthwaite t (welch_skew) guards against a skewed arm, Hsu's t against the tails, and a
    claim pays the larger of the two, not their product: 0.59 / 0.59 / 0.14 x there, every normal, t3 and in-class
    skewed regime at unequal sizes at most 0.88 / 0.66 / 0.70 x alpha (100k and 20k data sets;
    benchmarks/calibration.py --welch). Before, the df itself was moved three quarters of the way down to Hsu's
    (DF_SHRINK 0.25, issue 25 item 5, fitted without the hedge) and the skew hedge multiplied on top, so unequal
    sizes paid twice: a 1 sd effect at equal sds was found in 0.21 / 0.22 / 0.36 of data sets at 3 v 5 / 3 v 8 /
    4 v 8 (3 v 3: 0.26), now 0.27 / 0.29 / 0.44 (the hedge alone: 0.31 / 0.31 / 0.44, but 2.1 x alpha in the
    tails). Where the few-seed arm has a small weight in a contrast Hsu's bound costs power instead: a recovered
    fraction with 3 teacher (or small-net) seeds against 8 finds a 1 sd shortfall in 0.39 of data sets, 0.49
    before (3 distilled seeds: 0.22, 0.16 before). A share of Satterthwaite's excess kept in the guard's df (5%)
    wins that back but breaks the tails with a 2-seed arm (1.9 x at 0.002, 2 v 20), where Hsu's df is t_1.
    Equal sizes of at most SMALL_ARM seeds take the guard too: with the hedged Satterthwaite t alone 3 v 3 reached
    1.25 x alpha at 0.002 (one lognormal arm, sd ratio 1/3), with the guard 0.5 x, for 0.26 -> 0.23 power at 1 sd.
    Smaller arms of 5+ seeds keep the hedged Satterthwaite t alone (5 v 5 with one lognormal arm: 1.16 / 1.22 x
    alpha at 0.01 / 0.002, the skew hedge's own limit there; docs/statistics.md)."""
    df = hsu_df(sizes)
    return None if df is None else (np.asarray(se, float), np.full(np.shape(se), df))


def hsu_df(sizes) -> float | None:
    """Hsu's df, min(n) - 1, where Welch's t must clear it too (_hsu_guard: the smaller arm has at most SMALL_ARM
    seeds, equal sizes included), else None."""
    sizes = [int(n) for n in sizes]
    if len(sizes) < 2 or min(sizes) > SMALL_ARM:  # one arm's mean: its t is on n - 1 df already
        return None
    return min(sizes) - 1.0


def _share(hedge) -> float | None:
    """`hedge` as a skew share: False/None/0 none, True the paired share, a number that share."""
    if hedge is True:
        return W_PAIRED
    w = float(np.max(hedge)) if hedge is not None and np.size(hedge) else 0.0
    return w if w > 0 else None


@functools.lru_cache(maxsize=64)
def _t_sums(alpha: float, power: float, welch: bool, hedge: float | None = None) -> np.ndarray:
    """(t_{1-alpha} + t_{power}) / sqrt(n) for n = 2 .. 1201 seeds per arm (df n-1, or 2n-2 for Welch); with
    `hedge` (a skew share) t_{1-alpha} is times skew_factor(n, hedge)."""
    n = np.arange(2, 1202)
    df = 2 * (n - 1) if welch else n - 1
    return (sps.t.ppf(1 - alpha, df) * (skew_factor(n, hedge) if hedge else 1.0) + sps.t.ppf(power, df)) / np.sqrt(n)


def _seeds_needed(distance, sd_unit, alpha: float, welch: bool = False, power: float = POWER,
                  hedge: bool = False) -> np.ndarray:
    """Smallest n (seeds per arm) with (t_{1-alpha} + t_{power}) sd_unit / sqrt(n) <= distance: how many
    seeds decide, with `power`, a true effect `distance` away from the decision's boundary (the normal
    approximation, refined with t quantiles up to 1201 seeds). NaN where distance <= 0 or sd is undefined,
    or where more than SEEDS_CAP seeds would be needed."""
    distance, sd = np.broadcast_arrays(np.asarray(distance, float), np.asarray(sd_unit, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = distance / sd  # the t sums must fall to this
        w = _share(hedge)
        z = sps.norm.ppf(1 - alpha) * (float(skew_factor(np.inf, w)) if w else 1.0) + sps.norm.ppf(power)
        normal = np.ceil((z / ratio) ** 2)
    sums = _t_sums(float(alpha), float(power), bool(welch), w)
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
            x = d / sd * np.sqrt(n)[..., None] - sps.t.ppf(1 - alpha, df) * (skew_factor(n, w)[..., None] if w else 1.0)
        return np.sum(sps.t.sf(np.where(np.isnan(x), np.inf, x), df), -1)

    w = _share(hedge)
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
