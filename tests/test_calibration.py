"""The decisions are calibrated: simulated data sets through the registered check kinds themselves.

Under the null (identical arms; for equivalent / matches / at_least the truth exactly on the margin,
tolerance or bound: the least favourable case) each kind says REPRODUCED ("supported") at a rate no
higher than alpha, within Monte-Carlo error (3 standard errors of a binomial rate at alpha). With a
planted effect sized by the normal-approximation design for 80% power, each kind finds it with about
that power (t tests at 20 seeds lose a few points to the normal approximation; exact noncentral-t power
is checked where it has a closed form). The checks take a whole batch of simulated data sets at once
(values of shape simulations x seeds), so this file runs in seconds.

`RATES` collects each scenario's simulated rate; `test_print_table` prints them (pytest -s).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from repro.registry import CHECKS
from repro.spec import Check
from repro.stats import skew_factor

ALPHA = 0.05
N_NULL = 4000  # simulated data sets per null scenario: Monte-Carlo SE of a 5% rate = 0.0034
N_POWER = 4000  # per power scenario: SE of an 80% rate = 0.0063
RATES: dict[str, tuple[float, int]] = {}


def check(kind, arms, **kw) -> Check:
    return Check(kind=kind, metric="m", arms=arms, alpha=ALPHA, justification="calibration", **kw)


def upper(rate: float, n: int) -> float:
    """alpha plus 3 Monte-Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


def arms_data(rng, means, seeds, sims, sd=1.0, shared_sd=1.0):
    """One array (sims x seeds) per arm: arm mean + a per-seed effect shared by all arms (same init and
    data order: what pairing removes) + independent noise. Unpaired scenarios use independent arms
    (shared_sd 0), the situation Welch's test is for."""
    shared = rng.normal(0, shared_sd, (sims, seeds))
    return [m + shared + rng.normal(0, sd, (sims, seeds)) for m in means]


def rate(outcome, decision="supported") -> float:
    return float(np.mean(np.asarray(outcome["decision"]) == decision))


def record(name, outcome, sims, decision="supported"):
    r = rate(outcome, decision)
    RATES[name] = (r, sims)
    return r


# --- null: REPRODUCED at most alpha ---------------------------------------------------------------

M, TOL, BOUND = 2.0, 1.5, 0.5
NULLS = {
    # name: (kind, arm means, seeds, check keywords)
    "greater, paired t, 3 seeds": ("greater", [0, 0], 3, {}),
    "greater, paired t, 10 seeds": ("greater", [0, 0], 10, {}),
    "less, Welch t, 5 v 5": ("less", [0, 0], 5, {"paired": False}),
    "equivalent, paired TOST, diff = +margin": ("equivalent", [M, 0], 5, {"margin": M}),
    "equivalent, paired TOST, diff = -margin, 10 seeds": ("equivalent", [-M, 0], 10, {"margin": M}),
    "equivalent, Welch TOST, diff = margin": ("equivalent", [M, 0], 5, {"margin": M, "paired": False}),
    "equivalent, 3 arms, one pair at the margin": ("equivalent", [0, 0, M], 5, {"margin": M}),
    "matches, mean = value + tolerance": ("matches", [10 + TOL], 5, {"value": 10.0, "tolerance": TOL}),
    "matches, mean = value - tolerance, 3 seeds": ("matches", [10 - TOL], 3, {"value": 10.0, "tolerance": TOL}),
    "matches, 2 arms, one at the edge": ("matches", [10.0, 20 + TOL], 5, {"value": [10.0, 20.0], "tolerance": TOL}),
    "best_of, 3 identical arms": ("best_of", [0, 0, 0], 5, {"better": "lower"}),
    "best_of, least favourable (tie with one, far from other)": ("best_of", [0, 0, 50], 5, {"better": "lower"}),
    "best_of top 2, 4 identical arms": ("best_of", [0, 0, 0, 0], 5, {"better": "higher", "top": 2}),
    "best_of top 2, least favourable": ("best_of", [0, 0, 0, -50], 5, {"better": "higher", "top": 2}),
    "at_least recovered_fraction, paired, f = bound": (
        "at_least", [0, 10, 10 - 10 * BOUND], 5, {"derived": "recovered_fraction", "bound": BOUND}),
    "at_least recovered_fraction, Welch, f = bound": (
        "at_least", [0, 10, 10 - 10 * BOUND], 5, {"derived": "recovered_fraction", "bound": BOUND, "paired": False}),
    "at_least recovered_fraction, identical arms": (
        "at_least", [0, 0, 0], 5, {"derived": "recovered_fraction", "bound": BOUND}),
    "at_least mean, mean = bound": ("at_least", [3.0], 4, {"bound": 3.0}),
    "at_least difference, Welch, diff = bound": ("at_least", [1.0, 0], 6, {"derived": "difference", "bound": 1.0,
                                                                          "paired": False}),
}


@pytest.mark.parametrize("name", list(NULLS))
def test_null_reproduced_rate_at_most_alpha(name):
    kind, means, seeds, kw = NULLS[name]
    rng = np.random.default_rng(list(NULLS).index(name))
    arms = [f"arm{i}" for i in range(len(means))]
    data = arms_data(rng, means, seeds, N_NULL, shared_sd=0.0 if kw.get("paired") is False else 1.0)
    outcome = CHECKS.get(kind)(dict(zip(arms, data)), check(kind, arms, **kw))
    assert np.shape(outcome["p"]) == (N_NULL,)
    r = record(f"{kind}: {name}", outcome, N_NULL)
    assert r <= upper(ALPHA, N_NULL), f"{name}: REPRODUCED in {r:.4f} of {N_NULL} null data sets"
    # p-values and decisions agree, and the companion test is itself calibrated (exact tests)
    supported = np.asarray(outcome["decision"]) == "supported"
    assert np.array_equal(supported, np.asarray(outcome["p"]) < ALPHA)
    companion = np.asarray(outcome["companion"]["p"])
    if not np.all(np.isnan(companion)):
        assert np.all(companion >= outcome["companion"]["p_floor"] - 1e-12)
        assert np.mean(companion <= ALPHA) <= upper(ALPHA, N_NULL)


def test_least_favourable_nulls_are_tight():
    """Identical-arm nulls of intersection-union kinds are far below alpha. Every kind's t test now carries the skew
    hedge (stats.skew_factor), so with normal values each is below alpha, and it is tight at the edge of its skew
    class instead (test_every_kind_keeps_its_level_at_the_edge_of_its_skew_class)."""
    run = {name: RATES.get(f"{NULLS[name][0]}: {name}") for name in NULLS}
    if any(v is None for v in run.values()):
        pytest.skip("needs the null scenarios run first (same session)")
    assert run["best_of, 3 identical arms"][0] < ALPHA / 2


REFUTE_NULLS = {
    # the claim holds exactly at the edge: NOT REPRODUCED at most alpha
    "greater with margin, true effect = margin": ("greater", [M, 0], 5, {"margin": M}),
    "equivalent, true diff = margin (refutation side)": ("equivalent", [M, 0], 5, {"margin": M}),
    "matches, mean = value + tolerance (refutation side)": ("matches", [10 + TOL], 5, {"value": 10.0, "tolerance": TOL}),
    "at_least, f = bound (refutation side)": ("at_least", [0, 10, 10 - 10 * BOUND], 5,
                                              {"derived": "recovered_fraction", "bound": BOUND}),
}


@pytest.mark.parametrize("name", list(REFUTE_NULLS))
def test_not_reproduced_rate_at_most_alpha_when_the_claim_is_true(name):
    kind, means, seeds, kw = REFUTE_NULLS[name]
    rng = np.random.default_rng(100 + list(REFUTE_NULLS).index(name))
    arms = [f"arm{i}" for i in range(len(means))]
    outcome = CHECKS.get(kind)(dict(zip(arms, arms_data(rng, means, seeds, N_NULL))), check(kind, arms, **kw))
    r = record(f"{kind} (refute): {name}", outcome, N_NULL, "refuted")
    assert r <= upper(ALPHA, N_NULL), f"{name}: NOT REPRODUCED in {r:.4f} of {N_NULL}"


# --- issue 14's regimes: n = 2, integer metrics with small spread, TOST refuting at small margin / SE ---

# kind -> (means, keywords) with the claim false exactly at its edge (wrong-REPRODUCED) and true exactly at
# its edge (wrong-NOT-REPRODUCED). Means are whole numbers, so rounded data keep the edge where it is.
EDGES = {
    "greater": (([0, 0], {}), ([M, 0], {"margin": M})),
    "less": (([0, 0], {}), ([0, M], {"margin": M})),
    "equivalent": (([M, 0], {"margin": M}), ([M, 0], {"margin": M})),
    "matches": (([12], {"value": 10.0, "tolerance": M}), ([12], {"value": 10.0, "tolerance": M})),
    "best_of": (([0, 0, 50], {"better": "lower"}), ([0, M, 50], {"better": "lower", "margin": M})),
    "at_least": (([3], {"bound": 3.0}), ([3], {"bound": 3.0})),
}
REGIMES = {  # name: (seeds, sd of each noise term, round to integers)
    "n = 2": (2, 1.0, False),
    "integer, sd 0.7, 2 seeds": (2, 0.7, True),
    "integer, sd 0.7, 3 seeds": (3, 0.7, True),
    "integer, sd 1, 5 seeds": (5, 1.0, True),
    "integer, sd 0.5, 4 seeds, Welch": (4, 0.5, True),
}


@pytest.mark.parametrize("side", ["supported", "refuted"])
@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize("kind", list(EDGES))
def test_wrong_verdict_rates_at_most_alpha_in_small_and_integer_regimes(kind, regime, side):
    """Issue 14: with integer data of sd 0.7-1 and 2-5 seeds the null REPRODUCED rate was 0.06 (ties gave
    se 0 and p 0, and tied samples understate the spread); both wrong verdicts stay at or below alpha."""
    seeds, sd, integer = REGIMES[regime]
    means, kw = EDGES[kind][side == "refuted"]
    if "Welch" in regime:
        if kind in ("matches",) or (kind == "at_least" and len(means) == 1):
            pytest.skip("one arm: nothing to pair")
        kw = {**kw, "paired": False}
    rng = np.random.default_rng(1000 + 7 * list(EDGES).index(kind) + list(REGIMES).index(regime))
    arms = [f"arm{i}" for i in range(len(means))]
    data = arms_data(rng, means, seeds, N_NULL, sd=sd, shared_sd=0.0 if "Welch" in regime else sd)
    if integer:
        data = [np.round(x) for x in data]
    outcome = CHECKS.get(kind)(dict(zip(arms, data)), check(kind, arms, **kw))
    r = record(f"{kind} ({side} wrongly): {regime}", outcome, N_NULL, side)
    assert r <= upper(ALPHA, N_NULL), f"{kind}, {regime}: {side} in {r:.4f} of {N_NULL} data sets at the edge"
    assert not np.any(np.asarray(outcome["p"]) == 0)  # never a certainty


SPREADS = [0.3, 0.5, 1.0, 1.5, 3.0]


@pytest.mark.parametrize("spread", SPREADS)
def test_integer_metrics_keep_their_level_at_every_spread_and_most_of_the_power(spread):
    """Issue 25 item 7: the whole h^2/12 over-corrected (level 0.003 and power 0.16 at spread 0.5, 5 seeds) and
    none at all is liberal (0.06 at spread 0.7-1); half of it keeps every spread at or below alpha, on and off
    the lattice, and keeps most of the power (benchmarks/calibration.py runs this at 20k data sets). The paired t's
    skew hedge (stats.skew_factor) costs power here too: 0.43 -> 0.28 at 1 sd, spread 0.5."""
    rng = np.random.default_rng(int(spread * 10))
    chk = check("greater", ["a", "b"])
    worst = 0.0
    for offset in (0.0, 0.5):
        a, b = (np.round(offset + x) for x in arms_data(rng, [0, 0], 5, N_NULL, sd=spread, shared_sd=spread))
        worst = max(worst, rate(CHECKS.get("greater")({"a": a, "b": b}, chk)))
    RATES[f"greater, integer, spread {spread}, 5 seeds: null"] = (worst, N_NULL)
    assert worst <= upper(ALPHA, N_NULL), f"spread {spread}: REPRODUCED in {worst:.4f} of null data sets"
    if spread == 0.5:  # one sd of the differences: 0.28 (0.43 before the skew hedge; the whole 1/12 term 0.29)
        a, b = (np.round(x) for x in arms_data(rng, [spread * math.sqrt(2), 0], 5, N_NULL, sd=spread, shared_sd=spread))
        power = rate(CHECKS.get("greater")({"a": a, "b": b}, chk))
        RATES["greater, integer, spread 0.5, 5 seeds: power at 1 sd"] = (power, N_NULL)
        assert power >= 0.24, f"power {power:.3f}"


def _mean_matched_shift(rng, skewed, normal) -> float:
    """The shift c for which round(normal + c) has the mean of round(skewed): the integer metric's own null."""
    target, lo, hi = np.round(skewed).mean(), -3.0, 3.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.round(normal + mid).mean() < target else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("spread", [0.5, 0.7])
def test_integer_metrics_with_one_skewed_arm_keep_their_level(spread):
    """Issue 33's skew regime with the metric a count: one arm lognormal (sigma 1, long tail against the claim),
    the other normal, both rounded, equal means of the rounded values. Without the skew hedge the paired t
    rejects in 0.107 (spread 0.5) and 0.145 (0.7) of data sets; with it 0.025 / 0.049. This is the regime that
    rules out the power issue 33 asked for at spread 0.5 (0.35): the most powerful test of the per-seed
    differences against this one null reaches 0.27 (benchmarks/calibration.py, "integer metrics: the limit")."""
    rng = np.random.default_rng(int(spread * 100))
    chk = check("greater", ["a", "b"])
    big = 400_000
    skewed = lambda shape: -spread * lognormal(rng, shape)  # noqa: E731  long left tail: "greater" is favoured
    shift = _mean_matched_shift(rng, skewed(big), spread * rng.normal(0, 1, big))
    shared = rng.normal(0, spread, (N_NULL, 5))
    a = np.round(shared + skewed((N_NULL, 5)))
    b = np.round(shared + shift + spread * rng.normal(0, 1, (N_NULL, 5)))
    level = rate(CHECKS.get("greater")({"a": a, "b": b}, chk))
    RATES[f"greater, integer, one lognormal arm, spread {spread}, 5 seeds: null"] = (level, N_NULL)
    assert level <= upper(ALPHA, N_NULL), f"spread {spread}: REPRODUCED in {level:.4f} of null data sets"


def lognormal(rng, shape, sigma=1.0):
    """Lognormal noise centred at mean 0 with sd 1 (skewness 6.2 at sigma 1, 0.78 at sigma 0.25)."""
    x, m = rng.lognormal(0, sigma, shape), math.exp(sigma ** 2 / 2)
    return (x - m) / math.sqrt((math.exp(sigma ** 2) - 1) * math.exp(sigma ** 2))


# two-arm kinds on the edge where the claim is false, unpaired: (kind, keywords, mean of arm a)
UNPAIRED_EDGES = {"greater": ("greater", {}, 0.0), "less": ("less", {}, 0.0),
                  "equivalent": ("equivalent", {"margin": M}, M),
                  "at_least difference": ("at_least", {"derived": "difference", "bound": 1.0}, 1.0)}
UNEQUAL = {  # name: (seeds a, seeds b, noise of a, noise of b)
    "3 at sd 3 v 8 at sd 1": (3, 8, lambda rng, s: rng.normal(0, 3, s), lambda rng, s: rng.normal(0, 1, s)),
    "3 at sd 2 v 12 at sd 1": (3, 12, lambda rng, s: rng.normal(0, 2, s), lambda rng, s: rng.normal(0, 1, s)),
    "3 v 8, every arm lognormal": (3, 8, lognormal, lognormal),
    "3 v 8, t3 arms": (3, 8, lambda rng, s: rng.standard_t(3, s), lambda rng, s: rng.standard_t(3, s)),
}


@pytest.mark.parametrize("regime", list(UNEQUAL))
@pytest.mark.parametrize("kind", list(UNPAIRED_EDGES))
def test_welch_with_a_small_noisy_arm_keeps_its_level(kind, regime):
    """Issue 25 item 5: 3 seeds at sd 3 against 8 at sd 1 made every two-arm kind wrongly REPRODUCED in
    0.057-0.066 of data sets, and all-lognormal arms in 0.090: Satterthwaite's df overshoots when the small arm's
    variance comes out small. Every kind's Welch t now carries the skew hedge (welch_skew), and with a smaller arm
    of at most 4 seeds at unequal sizes it must clear Hsu's df, min(n) - 1, as well (stats.small_sample._hsu_guard;
    the tails: test_welch_tails_hold_at_holm_levels)."""
    name, kw, mean = UNPAIRED_EDGES[kind]
    na, nb, noise_a, noise_b = UNEQUAL[regime]
    rng = np.random.default_rng(300 + 7 * list(UNEQUAL).index(regime) + list(UNPAIRED_EDGES).index(kind))
    worst = 0.0
    for sign in (1, -1):  # a skewed arm is liberal on one side only: both
        a, b = mean + sign * noise_a(rng, (N_NULL, na)), sign * noise_b(rng, (N_NULL, nb))
        out = CHECKS.get(name)({"a": a, "b": b}, check(name, ["a", "b"], paired=False, **kw))
        worst = max(worst, rate(out))
    RATES[f"{kind} (supported wrongly): Welch {regime}"] = (worst, N_NULL)
    assert worst <= upper(ALPHA, N_NULL), f"{kind}, {regime}: REPRODUCED in {worst:.4f}"


N_TAIL = 30000  # data sets for a rate at alpha 0.002: Monte-Carlo SE 0.00026


@pytest.mark.parametrize("kind", list(UNPAIRED_EDGES))
def test_welch_tails_hold_at_holm_levels(kind):
    """Normal arms, 3 seeds at sd 5 against 8 at sd 1: Satterthwaite's df, estimated from the small arm's 3 seeds,
    comes out large exactly when that arm's variance comes out small, and the hedged Welch t alone said REPRODUCED
    in 2.1 x alpha at alpha 0.002 (Holm's level for 25 claims; 0.94 x at 0.01 and 0.60 x at 0.05, where the skew
    hedge hides it; 3 v 5: 1.07 x at 0.01). Hsu's df, min(n) - 1, is the bound that holds for normal arms at every
    sd ratio and level; at unequal sizes with a smaller arm of <= 4 seeds the t must clear it too
    (stats.small_sample._hsu_guard). The p of these kinds does not depend on the check's alpha, so one run reads
    every level."""
    name, kw, mean = UNPAIRED_EDGES[kind]
    rng = np.random.default_rng(350 + list(UNPAIRED_EDGES).index(kind))
    a, b = mean + rng.normal(0, 5, (N_TAIL, 3)), rng.normal(0, 1, (N_TAIL, 8))
    p = np.asarray(CHECKS.get(name)({"a": a, "b": b}, check(name, ["a", "b"], paired=False, **kw))["p"])
    for alpha in (0.01, 0.002):
        r = float(np.mean(p < alpha))
        RATES[f"{kind} (supported wrongly): Welch 3 at sd 5 v 8 at sd 1, alpha {alpha}"] = (r, N_TAIL)
        assert r <= upper(alpha, N_TAIL), f"{kind}: REPRODUCED in {r:.5f} at alpha {alpha}"


def test_welch_at_unequal_sizes_pays_for_skew_and_tails_once():
    """The df shrink toward Hsu's (issue 25 item 5) and the skew hedge (issue 33) were multiplied: Welch with 3 seeds
    against 8 at equal sds found a 1 sd effect (of a difference of two runs) in 0.22 of data sets, fewer than 3 v 3
    (0.26). The hedged Satterthwaite t and Hsu's t are two bounds, and a claim clears the larger: 0.29 (the hedge
    alone 0.31, but test_welch_tails_hold_at_holm_levels fails without Hsu's)."""
    rng = np.random.default_rng(360)
    a, b = math.sqrt(2) + rng.normal(0, 1, (N_POWER, 3)), rng.normal(0, 1, (N_POWER, 8))
    power = rate(CHECKS.get("greater")({"a": a, "b": b}, check("greater", ["a", "b"], paired=False)))
    RATES["greater, Welch 3 v 8, power at 1 sd"] = (power, N_POWER)
    assert power >= 0.26, f"power {power:.3f}"


def test_paired_symmetric_heavy_tails_keep_their_level():
    rng = np.random.default_rng(401)
    for n in (3, 5):
        a, b = rng.standard_t(3, (N_NULL, n)), rng.standard_t(3, (N_NULL, n))
        r = rate(CHECKS.get("less")({"a": a, "b": b}, check("less", ["a", "b"])))
        RATES[f"less (supported wrongly): paired t3 arms, {n} seeds"] = (r, N_NULL)
        assert r <= upper(ALPHA, N_NULL)


SKEW_EDGE = {  # the edge of the class the paired t's level is held over: (arm a's noise, arm b's noise)
    "one lognormal arm (sigma 1) against a normal arm": (lambda rng, s: lognormal(rng, s), lambda rng, s: rng.normal(0, 1, s)),
    "conditional: normal + lognormal (sigma 1) arm against one reused run": (
        lambda rng, s: rng.normal(0, 1, s) + lognormal(rng, s), lambda rng, s: np.full(s, 0.0)),
}


@pytest.mark.parametrize("tail", ["less", "greater"])
@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("regime", list(SKEW_EDGE))
def test_paired_strong_skew_against_the_claim_keeps_the_level(regime, n, tail):
    """Issue 25 item 5: one lognormal arm (sigma 1) took the paired t (and the conditional test against one reused
    run, the same one-sample t on the differences) to 0.068-0.076 wrong REPRODUCED on the side the skew favours.
    The paired t's standard error is now times stats.skew_factor(n): that side is at alpha (tight: the hedge is
    no wider than the class needs), the other far below. `tail` is the claim; the arm's skew is mirrored so
    that each claim meets both the skew that favours it and the one that does not."""
    noise_a, noise_b = SKEW_EDGE[regime]
    rng = np.random.default_rng(402 + 10 * n + list(SKEW_EDGE).index(regime))
    rates = {}
    for sign, favoured in ((1, tail == "less"), (-1, tail == "greater")):  # right skew favours "less"
        a, b = sign * noise_a(rng, (N_NULL, n)), sign * noise_b(rng, (N_NULL, n))
        rates[favoured] = rate(CHECKS.get(tail)({"a": a, "b": b}, check(tail, ["a", "b"])))
    RATES[f"{tail} (supported wrongly): paired, {regime}, {n} seeds, favoured side"] = (rates[True], N_NULL)
    assert rates[True] <= upper(ALPHA, N_NULL), f"REPRODUCED in {rates[True]:.4f} on the side the skew favours"
    assert rates[True] >= ALPHA - 3 * math.sqrt(ALPHA * (1 - ALPHA) / N_NULL), f"needlessly wide: {rates[True]:.4f}"
    assert rates[False] <= ALPHA


def test_paired_normal_differences_keep_the_power_the_skew_hedge_leaves():
    """The hedge's price, and no more: with normal differences (5 seeds, effect 1 sd of the differences) the paired
    greater finds the effect with the exact noncentral-t power of a t test whose critical value is skew_factor(5)
    times Student's (0.47; 0.58 without the hedge), within Monte Carlo error: a wider hedge (or a df cut that
    over-widens) fails here."""
    n, rng = 5, np.random.default_rng(403)
    shared = rng.normal(0, 1, (N_POWER, n))
    a, b = math.sqrt(2) + shared + rng.normal(0, 1, (N_POWER, n)), shared + rng.normal(0, 1, (N_POWER, n))
    power = record("greater (power): paired, normal, 1 sd, 5 seeds", CHECKS.get("greater")({"a": a, "b": b},
                                                                                             check("greater", ["a", "b"])), N_POWER)
    exact = sps.nct.sf(float(skew_factor(n)) * sps.t.ppf(1 - ALPHA, n - 1), n - 1, math.sqrt(n))
    plain = sps.nct.sf(sps.t.ppf(1 - ALPHA, n - 1), n - 1, math.sqrt(n))
    assert abs(power - exact) <= 3 * math.sqrt(exact * (1 - exact) / N_POWER), f"power {power:.3f}, exact {exact:.3f}"
    assert power >= 0.75 * plain, f"power {power:.3f} against {plain:.3f} without the hedge"


@pytest.mark.parametrize("kind", ["equivalent", "matches"])
@pytest.mark.parametrize("ratio", [0.001, 0.25])
def test_tost_refutes_a_true_claim_at_most_alpha_when_the_margin_is_small(kind, ratio):
    """Issue 14: each one-sided refutation at alpha made NOT REPRODUCED reach 2 alpha as margin / SE -> 0
    (0.10), and 0.067 at margin / SE = 0.25 with 3 seeds. The claim is true (difference 0, mean = value)."""
    seeds = 3
    se = math.sqrt(2 / seeds)  # paired differences / one arm: shared + own noise, both sd 1
    margin = ratio * se
    rng = np.random.default_rng(int(ratio * 1000) + (kind == "matches"))
    if kind == "equivalent":
        arms, kw = ["a", "b"], {"margin": margin}
        data = arms_data(rng, [0, 0], seeds, N_NULL)
    else:
        arms, kw = ["a"], {"value": 5.0, "tolerance": margin}
        data = arms_data(rng, [5.0], seeds, N_NULL)
    outcome = CHECKS.get(kind)(dict(zip(arms, data)), check(kind, arms, **kw))
    r = record(f"{kind} (refuted wrongly): margin / SE = {ratio}, {seeds} seeds", outcome, N_NULL, "refuted")
    assert r <= upper(ALPHA, N_NULL), f"NOT REPRODUCED in {r:.4f}"


# --- power: a planted effect is found about as often as the design says ------------------------------

Z = sps.norm.ppf(1 - ALPHA) + sps.norm.ppf(0.8)  # one-sided design for 80% power
N = 20  # seeds per arm in the power scenarios
F = float(skew_factor(N))  # the paired t's skew hedge widens its critical value F times: its design too
ZH = sps.norm.ppf(1 - ALPHA) * F + sps.norm.ppf(0.8)
W_RF = 1 / math.sqrt(BOUND ** 2 + 1 + (1 - BOUND) ** 2)  # the distilled arm's share of a recovered fraction's contrast
F_RF = float(skew_factor(N, W_RF))
Z_RF = sps.norm.ppf(1 - ALPHA) * F_RF + sps.norm.ppf(0.8)
DESIGN_TOLERANCE = 0.08  # t tests at 20 seeds against the normal approximation


def _best_of_delta(se: float) -> float:
    """Planted advantage for 80% power of 'first arm beats both others' (two correlated z tests, rho 0.5, each
    with the paired t's skew hedge)."""
    from scipy.optimize import brentq
    mvn = sps.multivariate_normal(mean=[0, 0], cov=[[1, 0.5], [0.5, 1]])
    crit = sps.norm.ppf(1 - ALPHA) * F
    return brentq(lambda d: mvn.cdf([d / se - crit] * 2) - 0.8, 0, 20 * se)


def power_scenarios():
    sd = 1.0  # independent noise per arm; the shared per-seed effect cancels in paired differences
    se_paired = sd * math.sqrt(2 / N)
    se_one = sd * math.sqrt(2) / math.sqrt(N)  # one arm: shared + own noise, both sd 1
    b, gap = BOUND, 10.0
    se_l = sd * math.sqrt((1 - b) ** 2 + 1 + b ** 2) / math.sqrt(N)
    f1 = b + Z_RF * se_l / gap  # L = (f - b) * gap
    return {
        # name: (kind, means, check keywords, shared-effect sd, exact power or None)
        # greater / at_least: the paired t statistic is noncentral t with noncentrality Z exactly
        "greater, paired t": ("greater", [ZH * se_paired, 0], {}, 1.0,
                              sps.nct.sf(F * sps.t.ppf(1 - ALPHA, N - 1), N - 1, ZH)),
        "less, Welch t": ("less", [0, ZH * math.sqrt(2 / N)], {"paired": False}, 0.0, None),  # equal sizes: F too
        "equivalent, paired TOST (true diff 0)": (
            "equivalent", [0, 0], {"margin": (sps.norm.ppf(1 - ALPHA) * F + sps.norm.ppf(0.9)) * se_paired}, 1.0, None),
        "matches, one-sample TOST (mean = value)": (
            "matches", [5.0], {"value": 5.0, "tolerance": (sps.norm.ppf(1 - ALPHA) * F + sps.norm.ppf(0.9)) * se_one},
            1.0, None),
        "best_of, first of 3 better by delta": ("best_of", [0, _best_of_delta(se_paired), _best_of_delta(se_paired)],
                                                {"better": "lower"}, 1.0, None),
        "at_least recovered_fraction, paired": (
            "at_least", [0, gap, gap - f1 * gap], {"derived": "recovered_fraction", "bound": b}, 1.0,
            sps.nct.sf(F_RF * sps.t.ppf(1 - ALPHA, N - 1), N - 1, Z_RF)),
    }


@pytest.mark.parametrize("name", list(power_scenarios()))
def test_planted_effect_found_with_design_power(name):
    """Design power 0.80 (normal approximation) for every scenario; found within +-0.08, and within
    3 Monte-Carlo SE of the exact noncentral-t power where that exists."""
    kind, means, kw, shared, exact = power_scenarios()[name]
    rng = np.random.default_rng(200 + list(power_scenarios()).index(name))
    arms = [f"arm{i}" for i in range(len(means))]
    data = arms_data(rng, means, N, N_POWER, shared_sd=shared)
    outcome = CHECKS.get(kind)(dict(zip(arms, data)), check(kind, arms, **kw))
    power = record(f"{kind} (power): {name}", outcome, N_POWER)
    assert abs(power - 0.80) <= DESIGN_TOLERANCE, f"{name}: power {power:.3f}, design 0.80"
    if exact is not None:
        assert abs(power - exact) <= 3 * math.sqrt(exact * (1 - exact) / N_POWER), f"{name}: exact {exact:.3f}"
    assert rate(outcome, "refuted") < 0.01  # a true effect is (almost) never called NOT REPRODUCED


def test_seeds_to_decide_delivers_its_power():
    """seeds_to_decide says how many seeds decide an effect of the observed size with 80% power: at that
    many seeds, a true effect of that size is found in about 80% of simulations (at least 75%)."""
    kind, arms = "greater", ["a", "b"]
    effect = 0.9  # in sds of the per-seed difference
    one = CHECKS.get(kind)({"a": [effect, effect + 1e-9, effect - 1e-9], "b": [0.0, 0.0, 0.0]}, check(kind, arms))
    rng = np.random.default_rng(7)
    probe = CHECKS.get(kind)({"a": rng.normal(effect, 1, (1, 400)), "b": np.zeros((1, 400))}, check(kind, arms))
    n = int(probe["seeds_to_decide"][0])
    assert 8 <= n <= 12 and one["seeds_to_decide"] == 2
    d = rng.normal(effect, 1, (N_POWER, n))
    outcome = CHECKS.get(kind)({"a": d, "b": np.zeros_like(d)}, check(kind, arms))
    power = record(f"greater (power): at seeds_to_decide = {n}, effect {effect} sd", outcome, N_POWER)
    assert 0.75 <= power <= 0.92


def test_print_table():
    """The rates above, as the closing note quotes them (shown with pytest -s)."""
    for name, (r, n) in sorted(RATES.items()):
        print(f"{r:7.4f}  n={n:5d}  {name}")
    assert RATES


# --- issue 33: every kind at the edge of its skew class, fixed and sequential ------------------------------------

# name: (kind, keywords, means at the least favourable null, arms ("v" varies, "c" one run reused for every seed),
# paired). Each arm is a seed effect shared by the arms (paired) plus its own noise, both of sd 1; one arm's noise
# is lognormal (sigma 1), skewed either way.
SKEW_KINDS = {
    "greater, paired": ("greater", {}, [0, 0], "vv", True),
    "equivalent, paired, diff = +margin": ("equivalent", {"margin": M}, [M, 0], "vv", True),
    "best_of, paired": ("best_of", {"better": "lower"}, [0, 0, 50], "vvv", True),
    "matches, mean = value + tolerance": ("matches", {"value": 10.0, "tolerance": TOL}, [10 + TOL], "v", True),
    "at_least mean": ("at_least", {"bound": 3.0}, [3.0], "v", True),
    "at_most mean": ("at_most", {"bound": 3.0}, [3.0], "v", True),
    "at_least difference, paired": ("at_least", {"derived": "difference", "bound": 1.0}, [1.0, 0], "vv", True),
    "at_most difference, paired": ("at_most", {"derived": "difference", "bound": 1.0}, [1.0, 0], "vv", True),
    "at_least recovered_fraction, paired": (
        "at_least", {"derived": "recovered_fraction", "bound": BOUND}, [0, 10, 10 - 10 * BOUND], "vvv", True),
    "at_least recovered_fraction, conditional (one teacher run)": (
        "at_least", {"derived": "recovered_fraction", "bound": BOUND}, [0, 10, 10 - 10 * BOUND], "cvv", True),
    "at_least relative_change, paired": ("at_least", {"derived": "relative_change", "bound": 0.2}, [12, 10], "vv", True),
    "greater, Welch": ("greater", {"paired": False}, [0, 0], "vv", False),
    "equivalent, Welch": ("equivalent", {"margin": M, "paired": False}, [M, 0], "vv", False),
    "best_of, Welch": ("best_of", {"better": "lower", "paired": False}, [0, 0, 50], "vvv", False),
    "at_least difference, Welch": ("at_least", {"derived": "difference", "bound": 1.0, "paired": False}, [1.0, 0], "vv", False),
    "at_least recovered_fraction, Welch": (
        "at_least", {"derived": "recovered_fraction", "bound": BOUND, "paired": False}, [0, 10, 10 - 10 * BOUND], "vvv", False),
}


def skewed_arms(rng, sims, means, layout, paired, seeds, skewed, sign, sigma=1.0):
    """Arm values at the null: arm `skewed` has lognormal noise (times `sign`), the others normal noise."""
    shared = rng.normal(0, 1, (sims, seeds)) if paired else 0.0
    out = {}
    for i, (mean, kind) in enumerate(zip(means, layout)):
        if kind == "c":
            out[f"arm{i}"] = np.full((sims, seeds), float(mean))
            continue
        noise = sign * lognormal(rng, (sims, seeds), sigma) if i == skewed else rng.normal(0, 1, (sims, seeds))
        out[f"arm{i}"] = mean + shared + noise
    return out


def worst_skew_rate(name, rng, sims, seeds, decide) -> float:
    kind, kw, means, layout, paired = SKEW_KINDS[name]
    worst = 0.0
    for skewed in [i for i, c in enumerate(layout) if c == "v"]:
        for sign in (1, -1):
            values = skewed_arms(rng, sims, means, layout, paired, seeds, skewed, sign)
            worst = max(worst, decide(values, check(kind, list(values), **kw)))
    return worst


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("name", list(SKEW_KINDS))
def test_every_kind_keeps_its_level_at_the_edge_of_its_skew_class(name, seeds):
    """Issue 33 item 5: matches, at_least / at_most (every derived quantity, conditional on one teacher run too) and
    Welch carried no skew hedge and said REPRODUCED in 0.074-0.094 of null data sets with one lognormal arm
    (sigma 1). Every kind's t now carries stats.skew_factor at the share of its tested quantity's sd that one arm
    carries (stats.small_sample.skew_share, welch_skew): at or below alpha on the worse side, and not far below."""
    kind = SKEW_KINDS[name][0]
    rng = np.random.default_rng(500 + 10 * list(SKEW_KINDS).index(name) + seeds)
    worst = worst_skew_rate(name, rng, N_NULL, seeds, lambda v, c: rate(CHECKS.get(kind)(v, c)))
    RATES[f"{kind} (supported wrongly): skew edge, {name}, {seeds} seeds"] = (worst, N_NULL)
    assert worst <= upper(ALPHA, N_NULL), f"{name}: REPRODUCED in {worst:.4f}"
    if kind != "best_of" and "Welch" not in name:  # one comparison, paired: the hedge is as wide as the class needs
        assert worst >= ALPHA - 4 * math.sqrt(ALPHA * (1 - ALPHA) / N_NULL), f"needlessly wide: {worst:.4f}"


N_SEQ = 3000


@pytest.mark.parametrize("name", [n for n in SKEW_KINDS if n.split(",")[0] not in ("best_of", "equivalent")])
def test_every_kind_keeps_its_level_across_looks_at_the_edge_of_its_skew_class(name):
    """The exact sequential p read the looks' joint law under normal values only, and spent more than alpha under
    skew (matches 0.080, recovered fraction 0.107, looks at 3, 5, ..., 11 seeds). It is now the larger of the normal
    and the skewed null's probabilities (sequential._null_ratios), and the union bound (Welch) reads hedged looks."""
    from repro.stats.sequential import Design, judge
    design = Design.of(3, 11, 2, ALPHA)
    rng = np.random.default_rng(700 + list(SKEW_KINDS).index(name))
    worst = worst_skew_rate(name, rng, N_SEQ, 11, lambda v, c: float(np.mean(judge(v, c, design)["decision"] == "supported")))
    RATES[f"{SKEW_KINDS[name][0]} (supported wrongly, sequential 3..11): skew edge, {name}"] = (worst, N_SEQ)
    assert worst <= upper(ALPHA, N_SEQ), f"{name}: REPRODUCED in {worst:.4f} across the looks"
