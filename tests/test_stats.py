"""Check kinds against scipy / statsmodels references (to 1e-8), their decisions, the interval/p
duality, the companion tests' floors, and the spec keys each kind requires."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW, ttost_ind, ttost_paired

from repro.registry import CHECKS
from repro.spec import Check, SpecError, load_claim
from repro.stats import (DERIVED, at_least, best_of, equivalent, greater, holm, less, matches,
                         seeds_to_decide, sign_flip, skew_factor, two_sample_permutation)

TIGHT = {"rel": 1e-8, "abs": 1e-12}
KINDS = ["greater", "less", "equivalent", "matches", "best_of", "at_least"]


def check(kind="less", arms=("a", "b"), **kw) -> Check:
    return Check(**{"kind": kind, "metric": "m", "arms": list(arms), "alpha": 0.05, "justification": "test", **kw})


# One value of each constant off the integers: all-integer data get the rounding variance (see
# test_integer_data_get_the_rounding_variance), and these tests compare with the plain scipy tests.
A = [101.5, 98, 104, 99, 103]
B = [110.5, 105, 108, 101, 104]
B_LONG = [110.5, 115, 108, 113, 109, 111]


def hedged_rel(x, y, alternative):
    """scipy's paired t with its standard error times stats.skew_factor(n) (issue 25: the paired checks' hedge
    against skewed differences): statistic / f, the p at the same df, the one-sided 95% bound f times as far."""
    ref = sps.ttest_rel(x, y, alternative=alternative)
    f = float(skew_factor(len(x)))
    t = ref.statistic / f
    p = sps.t.sf(t, ref.df) if alternative == "greater" else sps.t.cdf(t, ref.df)
    d = np.subtract(x, y)
    half = sps.t.ppf(0.95, ref.df) * d.std(ddof=1) / math.sqrt(len(d)) * f
    return t, p, ref.df, (d.mean() - half, d.mean() + half)


def hedged(statistic, df, f, alternative):
    """A t statistic with its standard error times the skew hedge f: (statistic / f, its one-sided p)."""
    t = statistic / f
    return t, (sps.t.sf(t, df) if alternative == "greater" else sps.t.cdf(t, df))


def welch_factor(na, nb):
    """The skew hedge of Welch's t for two arms of na and nb seeds (stats.small_sample.welch_skew)."""
    from repro.stats.small_sample import welch_skew
    return welch_skew([1, -1], [na, nb])[0]


def hedged_ttost_paired(x, y, low, upp):
    """statsmodels' ttost_paired with the same hedge: (p, (t, p, df) lower, (t, p, df) upper)."""
    _, lower, upper = ttost_paired(np.array(x), np.array(y), low, upp)
    f = float(skew_factor(len(x)))
    lower = (lower[0] / f, sps.t.sf(lower[0] / f, lower[2]), lower[2])
    upper = (upper[0] / f, sps.t.cdf(upper[0] / f, upper[2]), upper[2])
    return max(lower[1], upper[1]), lower, upper


# --- references ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,alternative", [("greater", "greater"), ("less", "less")])
@pytest.mark.parametrize("b", [B, B_LONG], ids=["paired", "welch"])
def test_directional_matches_scipy(kind, alternative, b):
    out = CHECKS.get(kind)({"a": A, "b": b}, check(kind))
    paired = len(b) == len(A)
    side = 0 if kind == "greater" else 1
    if paired:
        statistic, p, df, bounds = hedged_rel(A, b, alternative)
    else:
        ref = sps.ttest_ind(A, b, equal_var=False, alternative=alternative)
        f = welch_factor(len(A), len(b))
        (statistic, p), df = hedged(ref.statistic, ref.df, f, alternative), ref.df
        diff = np.mean(A) - np.mean(b)
        half = sps.t.ppf(0.95, df) * diff / ref.statistic * f
        bounds = (diff - half, diff + half)
    assert out["paired"] == paired
    assert out["statistic"] == pytest.approx(statistic, **TIGHT)
    assert out["p"] == pytest.approx(p, **TIGHT)
    assert out["df"] == pytest.approx(df, **TIGHT)
    # the claim-side bound of our (1 - 2 alpha) interval is the reference's one-sided 95% bound
    assert out["ci"][side] == pytest.approx(bounds[side], **TIGHT)
    assert out["diff"] == pytest.approx(np.mean(A) - np.mean(b), **TIGHT)


@pytest.mark.parametrize("b", [B, B_LONG], ids=["paired", "welch"])
@pytest.mark.parametrize("margin", [3.0, 8.0, 12.0])
def test_equivalent_matches_statsmodels_ttost(b, margin):
    out = equivalent({"a": A, "b": b}, check("equivalent", margin=margin))
    if len(b) == len(A):
        p, lower, upper = hedged_ttost_paired(A, b, -margin, margin)
    else:
        _, lower, upper = ttost_ind(np.array(A), np.array(b), -margin, margin, usevar="unequal")
        f = welch_factor(len(A), len(b))
        lower = (*hedged(lower[0], lower[2], f, "greater"), lower[2])
        upper = (*hedged(upper[0], upper[2], f, "less"), upper[2])
        p = max(lower[1], upper[1])
    assert out["p"] == pytest.approx(p, **TIGHT)
    binding = lower if lower[1] >= upper[1] else upper
    assert out["statistic"] == pytest.approx(binding[0], **TIGHT)
    assert out["df"] == pytest.approx(binding[2], **TIGHT)


def test_equivalent_of_several_arms_is_the_largest_pairwise_tost():
    c = [104.5, 100, 103, 100, 106]
    out = equivalent({"a": A, "b": B, "c": c}, check("equivalent", arms="abc", margin=8.0))
    refs = [hedged_ttost_paired(x, y, -8.0, 8.0)[0] for x, y in [(A, B), (A, c), (B, c)]]
    assert out["p"] == pytest.approx(max(refs), **TIGHT)
    assert [q["p"] for q in out["pairs"]] == pytest.approx(refs, **TIGHT)


@pytest.mark.parametrize("value,tolerance", [(101.0, 3.0), (100.0, 1.0), (95.0, 4.0)])
def test_matches_is_statsmodels_ttost_mean(value, tolerance):
    out = matches({"a": A}, check("matches", arms="a", value=value, tolerance=tolerance))
    _, lower, upper = DescrStatsW(np.array(A)).ttost_mean(value - tolerance, value + tolerance)
    f = float(skew_factor(len(A)))  # one arm: the seed's effect and its own noise, hedged as a paired difference
    p = max(hedged(lower[0], lower[2], f, "greater")[1], hedged(upper[0], upper[2], f, "less")[1])
    assert out["p"] == pytest.approx(p, **TIGHT)
    assert out["estimate"] == pytest.approx(np.mean(A), **TIGHT)
    assert out["diff"] == pytest.approx(np.mean(A) - value, **TIGHT)


def test_matches_of_several_arms_with_their_own_values():
    out = matches({"a": A, "b": B}, check("matches", value=[101.0, 106.0], tolerance=4.0))
    f = float(skew_factor(5))
    refs = [max(hedged(lo[0], lo[2], f, "greater")[1], hedged(up[0], up[2], f, "less")[1])
            for lo, up in (DescrStatsW(np.array(x)).ttost_mean(v - 4, v + 4)[1:] for x, v in [(A, 101.0), (B, 106.0)])]
    assert out["p"] == pytest.approx(max(refs), **TIGHT)


@pytest.mark.parametrize("better", ["lower", "higher"])
def test_best_of_is_the_largest_pairwise_one_sided_p(better):
    c = [107.5, 104, 109, 100, 108]
    out = best_of({"a": A, "b": B, "c": c}, check("best_of", arms="abc", better=better))
    alternative = "less" if better == "lower" else "greater"
    refs = [hedged_rel(A, x, alternative)[1] for x in (B, c)]
    assert out["p"] == pytest.approx(max(refs), **TIGHT)


def test_best_of_top_k_tests_the_best_by_mean_with_bonferroni():
    lead2 = [97.5, 96, 101, 97, 100]  # better (lower) mean than A: it is the one tested
    c = [107.5, 104, 109, 100, 108]
    out = best_of({"a": A, "l": lead2, "b": B, "c": c}, check("best_of", arms="albc", better="lower", top=2))
    refs = [hedged_rel(lead2, x, "less")[1] for x in (B, c)]
    assert out["chosen"] == "l"
    assert out["p"] == pytest.approx(min(1.0, 2 * max(refs)), **TIGHT)


def test_at_least_mean_is_a_one_sample_t():
    out = at_least({"a": A}, check("at_least", arms="a", bound=99.0))
    ref = sps.ttest_1samp(A, 99.0, alternative="greater")
    f = float(skew_factor(len(A)))  # the skew hedge of one arm's mean
    statistic, p = hedged(ref.statistic, ref.df, f, "greater")
    assert out["p"] == pytest.approx(p, **TIGHT)
    assert out["statistic"] == pytest.approx(statistic, **TIGHT)
    half = sps.t.ppf(0.95, ref.df) * np.std(A, ddof=1) / math.sqrt(len(A)) * f
    assert out["estimate_ci"][0] == pytest.approx(np.mean(A) - half, **TIGHT)


TEACHER = [67.5, 70, 64, 69, 66]
SMALL = [146.5, 140, 151, 143, 149]
DISTILLED = [80.5, 74, 85, 79, 78]


def test_recovered_fraction_paired_is_a_t_test_on_the_linear_contrast():
    values = {"t": TEACHER, "s": SMALL, "d": DISTILLED}
    out = at_least(values, check("at_least", arms="tsd", derived="recovered_fraction", bound=0.8))
    t, s, d = map(np.array, (TEACHER, SMALL, DISTILLED))
    ref = sps.ttest_1samp((s - d) - 0.8 * (s - t), 0.0, alternative="greater")
    # the skew hedge at the share the distilled arm carries in L = 0.2 s - d + 0.8 t: 1 / sqrt(0.04 + 1 + 0.64)
    f = float(skew_factor(5, 1 / math.sqrt(0.2 ** 2 + 1 + 0.8 ** 2)))
    assert out["p"] == pytest.approx(hedged(ref.statistic, ref.df, f, "greater")[1], **TIGHT)  # D far above 0: L binds
    assert out["estimate"] == pytest.approx((s.mean() - d.mean()) / (s.mean() - t.mean()), **TIGHT)


@pytest.mark.parametrize("paired", [True, False])
def test_fieller_interval_is_dual_to_the_contrast_test(paired):
    """At bound = the interval's lower end, the contrast test sits exactly at p = alpha."""
    values = {"t": TEACHER, "s": SMALL, "d": DISTILLED}
    first = at_least(values, check("at_least", arms="tsd", derived="recovered_fraction", bound=0.5, paired=paired))
    lo = first["estimate_ci"][0]
    assert lo < first["estimate"] < first["estimate_ci"][1]
    if paired:
        at_edge = at_least(values, check("at_least", arms="tsd", derived="recovered_fraction", bound=lo))
        assert at_edge["p"] == pytest.approx(0.05, rel=1e-7)


def test_difference_unpaired_is_a_shifted_welch_test():
    out = at_least({"a": B_LONG, "b": A}, check("at_least", derived="difference", bound=4.0, paired=False))
    ref = sps.ttest_ind(np.array(B_LONG) - 4.0, A, equal_var=False, alternative="greater")
    assert out["p"] == pytest.approx(hedged(ref.statistic, ref.df, welch_factor(len(B_LONG), len(A)), "greater")[1],
                                     **TIGHT)
    assert out["df"] == pytest.approx(ref.df, **TIGHT)


def test_companions_match_scipy_permutation_test():
    d = np.array(A) - np.array(B)
    ref = sps.permutation_test((A, B), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                               alternative="less", n_resamples=np.inf, vectorized=True)
    assert sign_flip(-d)["p"] == pytest.approx(ref.pvalue, **TIGHT)
    ref2 = sps.permutation_test((A, B_LONG), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                permutation_type="independent", alternative="greater", n_resamples=np.inf,
                                vectorized=True)
    assert two_sample_permutation(A, B_LONG)["p"] == pytest.approx(ref2.pvalue, **TIGHT)


def test_companion_floors_are_known_and_reached():
    """3 paired seeds: a sign-flip test cannot go below 1/8; 3 v 3 unpaired: 1/20 (never < 0.05)."""
    three = {"a": [1.0, 2, 3], "b": [10.0, 11, 12]}
    paired = less(three, check())
    assert paired["companion"]["p_floor"] == 1 / 8 and paired["companion"]["p"] == 1 / 8
    unpaired = less(three, check(paired=False))
    assert unpaired["companion"]["p_floor"] == 1 / 20 and unpaired["companion"]["p"] == 1 / 20
    big = sign_flip(np.arange(1.0, 16))  # 2^15 arrangements: Monte Carlo with a fixed seed
    assert not big["exact"] and big["p_floor"] == pytest.approx(1 / 2000) and big["p"] == pytest.approx(1 / 2000)
    assert sign_flip(np.arange(1.0, 16))["p"] == big["p"]  # deterministic


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, 0.001, math.nan]
    ref = multipletests(p[:5], method="holm")[1]
    adjusted = holm(p)
    assert adjusted[:5] == pytest.approx(list(ref), **TIGHT)
    assert math.isnan(adjusted[5])


# --- decisions ------------------------------------------------------------------------------------

def test_less_decides_supported_refuted_undecided():
    assert less({"a": [70.0, 72, 71], "b": [140.0, 150, 146]}, check())["decision"] == "supported"
    assert less({"a": [140.0, 150, 146], "b": [70.0, 72, 71]}, check())["decision"] == "refuted"
    out = less({"a": [100.0, 130, 90], "b": [110.0, 100, 120]}, check())
    assert out["decision"] == "undecided" and out["seeds_to_decide"] > 3


def test_margin_lets_a_negligible_effect_refute_a_directional_claim():
    """An effect confidently smaller than the margin refutes, unless it is significant: a claim "a > b"
    states no size, so a small but clear effect still supports it."""
    a, b = [100.2, 100.0, 100.3, 100.1], [100.1, 100.2, 100.2, 100.0]
    assert greater({"a": a, "b": b}, check("greater"))["decision"] == "undecided"
    assert greater({"a": a, "b": b}, check("greater", margin=2.0))["decision"] == "refuted"
    small_but_clear = [100.2, 100.3, 100.4, 100.2], [100.0, 100.1, 100.2, 100.1]
    assert greater(dict(zip("ab", small_but_clear)), check("greater", margin=2.0))["decision"] == "supported"


def test_equivalent_matches_best_of_at_least_decide_all_three_ways():
    eq = check("equivalent", margin=2.0)
    assert equivalent({"a": [10.0, 10.2, 9.9, 10.1], "b": [10.1, 10.0, 10.0, 10.2]}, eq)["decision"] == "supported"
    assert equivalent({"a": [10.0, 10.2, 9.9, 10.1], "b": [20.1, 20.0, 20.0, 20.2]}, eq)["decision"] == "refuted"
    assert equivalent({"a": [10.0, 14, 7, 10], "b": [11.0, 10, 12, 9]}, eq)["decision"] == "undecided"
    mt = check("matches", arms="a", value=67.0, tolerance=5.0)
    assert matches({"a": [66.0, 68, 67, 69]}, mt)["decision"] == "supported"
    assert matches({"a": [96.0, 98, 97, 99]}, mt)["decision"] == "refuted"
    assert matches({"a": [60.0, 75, 64, 80]}, mt)["decision"] == "undecided"
    bo = check("best_of", arms="abc", better="lower")
    assert best_of({"a": [1.0, 1.1, 0.9], "b": [5.0, 5.2, 5.1], "c": [9.0, 9.1, 9.3]}, bo)["decision"] == "supported"
    assert best_of({"a": [9.0, 9.1, 9.3], "b": [5.0, 5.2, 5.1], "c": [1.0, 1.1, 0.9]}, bo)["decision"] == "refuted"
    assert best_of({"a": [1.0, 5.1, 3], "b": [2.0, 4.2, 5.1], "c": [9.0, 9.1, 9.3]}, bo)["decision"] == "undecided"
    al = check("at_least", arms="tsd", derived="recovered_fraction", bound=0.5)
    good = {"t": TEACHER, "s": SMALL, "d": DISTILLED}
    assert at_least(good, al)["decision"] == "supported"
    assert at_least({**good, "d": [140.0, 139, 146, 140, 144]}, al)["decision"] == "refuted"
    teacher_no_better = {"t": SMALL[::-1], "s": SMALL, "d": DISTILLED}  # D = small - teacher ~ 0
    out = at_least(teacher_no_better, al)
    assert out["decision"] == "undecided" and out["estimate_ci"] == (-math.inf, math.inf)


def test_no_spread_is_undecided_never_p_zero():
    """Seeds that agree exactly (or to float noise) measure no spread: issue 14 found
    less([70, 70], [71, 71]) at p = 0, a certainty no Holm family could demote. Every kind says undecided."""
    for paired in (None, False):
        out = less({"a": [70.0, 70.0], "b": [71.0, 71.0]}, check(paired=paired))
        assert out["decision"] == "undecided" and math.isnan(out["p"]) and out["no_spread"], paired
    noise = greater({"a": [0.5, 0.5, 0.5], "b": [0.4, 0.4 + 1e-15, 0.4]}, check("greater"))
    assert noise["decision"] == "undecided" and noise["no_spread"]
    assert matches({"a": [55.0] * 3}, check("matches", arms="a", value=55.0, tolerance=1.0))["decision"] == "undecided"
    assert equivalent({"a": [7.5] * 3, "b": [7.5] * 3}, check("equivalent", margin=1.0))["decision"] == "undecided"
    assert at_least({"a": [3.0] * 3}, check("at_least", arms="a", bound=1.0))["decision"] == "undecided"
    out = best_of({"a": [1.0] * 3, "b": [5.0] * 3, "c": [9.0, 9.5, 9.25]}, check("best_of", arms="abc", better="lower"))
    assert out["decision"] == "undecided" and math.isnan(out["p"])
    same = less({"a": [1.0, 1.0], "b": [1.0, 1.0]}, check())
    assert same["decision"] == "undecided" and same["seeds_to_decide"] is None
    # an arm with no spread in an unpaired comparison: its variance is unmeasured, not zero
    assert math.isnan(less({"a": [70.0, 70.0, 70.0], "b": [71.5, 73, 72]}, check(paired=False))["p"])


def test_integer_data_get_no_rounding_variance_under_the_skew_hedge():
    """Counts (test errors) are tested on their own sample variance: the tie allowance (h^2/24 per value, issue 25
    item 7) is redundant under every kind's skew hedge (issue 33; test_calibration covers the rates)."""
    from repro.stats.small_sample import welch_skew
    a, b = [70.0, 72, 71, 73], [74.0, 73, 75, 77]
    out = less({"a": a, "b": b}, check(paired=False))
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert out["statistic"] == pytest.approx(ref.statistic / welch_skew([1, -1], [4, 4])[0], **TIGHT)
    paired = less({"a": a, "b": b}, check())
    d = np.subtract(a, b)
    assert paired["statistic"] == pytest.approx(d.mean() / math.sqrt(d.var(ddof=1) / 4) / skew_factor(4), **TIGHT)


def test_too_few_seeds_is_undecided():
    out = less({"a": [1.0], "b": [2.0]}, check())
    assert out["decision"] == "undecided" and math.isnan(out["p"]) and out["seeds_to_decide"] is None


def random_cases(rng, kind):
    a, b, c = (rng.normal(m, s, 4) for m, s in [(10, 2), (11, 2), (12, 3)])
    cases = {
        "greater": ({"a": a, "b": b}, check("greater")),
        "less": ({"a": a, "b": b[:3]}, check("less")),
        "equivalent": ({"a": a, "b": b}, check("equivalent", margin=2.5)),
        "matches": ({"a": a}, check("matches", arms="a", value=10.5, tolerance=2.0)),
        "best_of": ({"a": a, "b": b, "c": c}, check("best_of", arms="abc", better="lower")),
        # teacher, small, distilled with a clearly positive gap (the premise that the precondition checks)
        "at_least": ({"a": a - 10, "b": b + 10, "c": c}, check("at_least", arms="abc", derived="recovered_fraction",
                                                              bound=0.4)),
    }
    return cases[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_p_below_alpha_iff_interval_excludes_the_null(kind):
    rng = np.random.default_rng(KINDS.index(kind))
    for _ in range(200):
        values, c = random_cases(rng, kind)
        out = CHECKS.get(kind)(values, c)
        lo, hi = out["ci"]  # relative to the null's reference point
        if kind in ("greater", "at_least") or (kind == "best_of" and c.better == "higher"):
            excludes = lo > 0
        elif kind in ("less", "best_of"):
            excludes = hi < 0
        else:  # equivalence: inside the band
            band = c.margin if kind == "equivalent" else c.tolerance
            excludes = -band < lo and hi < band
        assert (out["p"] < c.alpha) == excludes, (kind, out)


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_gives_the_same_numbers_as_one_data_set_at_a_time(kind):
    rng = np.random.default_rng(50 + KINDS.index(kind))
    batch = [random_cases(rng, kind) for _ in range(5)]
    c = batch[0][1]
    stacked = {arm: np.stack([np.asarray(v[arm]) for v, _ in batch]) for arm in batch[0][0]}
    together = CHECKS.get(kind)(stacked, c)
    for i, (values, _) in enumerate(batch):
        alone = CHECKS.get(kind)(values, c)
        for key in ("p", "statistic", "df", "diff", "effect_size"):
            assert alone[key] == pytest.approx(float(together[key][i]), nan_ok=True, rel=1e-12), key
        assert alone["decision"] == together["decision"][i]
        assert alone["companion"]["p"] == pytest.approx(float(together["companion"]["p"][i]), nan_ok=True)


def test_seeds_to_decide_uses_t_quantiles():
    # effect = 1 sd: the normal approximation says 7 paired seeds; with t quantiles it takes 8
    assert seeds_to_decide(1.0, 1.0, 0.05) == 8
    assert seeds_to_decide(1.0, 0.0, 0.05) == 2
    assert seeds_to_decide(0.0, 1.0, 0.05) is None
    assert seeds_to_decide(1.0, 1.0, 0.05, welch=True) < seeds_to_decide(1.0, math.sqrt(2), 0.05)


# --- specs name what their kind needs -------------------------------------------------------------

def claim_doc(check_doc: dict) -> dict:
    return {"id": "toy", "source": {"file": "x.txt", "quote": "q"}, "statement": "s",
            "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                         "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
            "arms": {"teacher": {}, "small": {}, "distilled": {}, "other": {}},
            "check": {"metric": "test_errors", "alpha": 0.05, "justification": "why", **check_doc},
            "profiles": {"smoke": {"seeds": [0, 1, 2], "scale": "toy"}}}


def load(tmp_path, check_doc):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(claim_doc(check_doc)))
    return load_claim(path)


GOOD = {
    "greater": {"kind": "greater", "arms": ["distilled", "small"]},
    "equivalent": {"kind": "equivalent", "arms": ["distilled", "small", "other"], "margin": 5},
    "matches": {"kind": "matches", "arms": ["teacher"], "value": 67, "tolerance": 20},
    "best_of": {"kind": "best_of", "arms": ["distilled", "small", "other"], "better": "lower", "top": 2},
    "at_least": {"kind": "at_least", "arms": ["teacher", "small", "distilled"], "derived": "recovered_fraction",
                 "bound": 0.5},
    "at_least mean": {"kind": "at_least", "arms": ["distilled"], "bound": 0.9},
}


@pytest.mark.parametrize("name", list(GOOD))
def test_well_formed_checks_load(tmp_path, name):
    assert load(tmp_path, GOOD[name]).check.kind == GOOD[name]["kind"]


@pytest.mark.parametrize("name,edit,expected", [
    ("equivalent", lambda c: c.pop("margin"), "check.margin: check 'equivalent' needs 'margin'"),
    ("matches", lambda c: c.pop("tolerance"), "check.tolerance: check 'matches' needs 'tolerance'"),
    ("matches", lambda c: c.pop("value"), "check.value: check 'matches' needs 'value'"),
    ("matches", lambda c: c.update(tolerance=0), "check.tolerance: Input should be greater than 0"),
    ("matches", lambda c: c.update(value=[1, 2]), "value: one number per arm (1), got 2"),
    ("best_of", lambda c: c.pop("better"), "check.better: check 'best_of' needs 'better'"),
    ("best_of", lambda c: c.update(top=3), "top: must leave at least one other arm"),
    ("at_least", lambda c: c.pop("bound"), "check.bound: check 'at_least' needs 'bound'"),
    ("at_least", lambda c: c.update(derived="eval('1')"), "check.derived: unknown derived quantity"),
    ("at_least", lambda c: c.update(arms=["teacher", "small"]), "compares exactly 3 arms for 'recovered_fraction'"),
    ("at_least mean", lambda c: c.update(arms=["teacher", "small"]), "compares exactly 1 arms for 'mean'"),
    ("greater", lambda c: c.update(tolerance=3), "check.tolerance: 'tolerance' does not apply to check 'greater'"),
    ("greater", lambda c: c.update(arms=["distilled"]), "check 'greater' compares exactly 2 arms"),
    ("greater", lambda c: c.pop("justification"), "check.justification: Field required"),
    ("greater", lambda c: c.update(justification="   "), "check.justification: justification is blank"),
    ("greater", lambda c: c.update(alpha=0.5), "check.alpha: Input should be less than 0.5"),
])
def test_a_check_without_what_its_kind_needs_is_rejected(tmp_path, name, edit, expected):
    doc = dict(GOOD[name], justification="why")
    edit(doc)
    path = tmp_path / "toy.yaml"
    full = claim_doc({})
    full["check"] = {"metric": "test_errors", "alpha": 0.05, **doc}
    path.write_text(yaml.safe_dump(full))
    with pytest.raises(SpecError) as err:
        load_claim(path)
    assert str(err.value).startswith(str(path)) and expected in str(err.value), str(err.value)


def test_preconditions_are_validated_the_same_way(tmp_path):
    doc = claim_doc(GOOD["greater"])
    doc["preconditions"] = [{"kind": "equivalent", "metric": "m", "arms": ["teacher", "small"], "alpha": 0.05,
                             "justification": "j"}]
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"preconditions\.0\.margin: check 'equivalent' needs 'margin'"):
        load_claim(path)


def test_every_kind_is_registered_and_every_derived_quantity_is_linear():
    assert set(KINDS) <= set(CHECKS.names())
    for spec in DERIVED.values():
        assert len(spec.numerator) == len(spec.denominator) == len(spec.roles)


# --- at_most (issue 17): an upper bound, as at_least on the mirrored quantity -------------------------

def test_at_most_mean_is_a_one_sample_t_below_the_bound():
    from repro.stats import at_most
    fidelity = [0.970, 0.975, 0.972, 0.968, 0.971]
    out = at_most({"a": fidelity}, check("at_most", arms="a", bound=0.99))
    ref = sps.ttest_1samp(fidelity, 0.99, alternative="less")
    f = float(skew_factor(5))
    assert out["p"] == pytest.approx(hedged(ref.statistic, ref.df, f, "less")[1], **TIGHT)
    assert out["decision"] == "supported"
    assert out["estimate"] == pytest.approx(np.mean(fidelity), **TIGHT)
    half = sps.t.ppf(0.95, ref.df) * np.std(fidelity, ddof=1) / math.sqrt(5) * f
    assert out["estimate_ci"][1] == pytest.approx(np.mean(fidelity) + half, **TIGHT)
    assert out["hypothesis"] == "mean(a) <= 0.99" and out["diff"] == pytest.approx(np.mean(fidelity) - 0.99)
    assert at_most({"a": [0.995, 0.996, 0.997, 0.995, 0.994]}, check("at_most", arms="a", bound=0.99))[
        "decision"] == "refuted"


def test_at_most_difference_is_at_least_with_the_arms_swapped():
    from repro.stats import at_most
    most = at_most({"a": A, "b": B}, check("at_most", arms=("a", "b"), derived="difference", bound=-2.0))
    least = at_least({"b": B, "a": A}, check("at_least", arms=("b", "a"), derived="difference", bound=2.0))
    assert most["p"] == pytest.approx(least["p"], **TIGHT) and most["decision"] == least["decision"]
    assert most["estimate"] == pytest.approx(-least["estimate"], **TIGHT)


def test_at_most_refuses_a_ratio_it_cannot_mirror():
    from repro.stats import at_most
    with pytest.raises(ValueError, match="derived: at_most takes 'mean' or 'difference'"):  # at validation now
        check("at_most", arms=("a", "b"), derived="relative_change", bound=0.1)
    unvalidated = check("at_most", arms=("a", "b"), derived="difference", bound=0.1).model_copy(
        update={"derived": "relative_change"})
    with pytest.raises(ValueError, match="at_most takes derived 'mean'"):  # and the function itself
        at_most({"a": A, "b": B}, unvalidated)


def test_at_most_arms_follow_the_derived_quantity_at_validation():
    with pytest.raises(ValueError, match=r"check 'at_most' compares exactly 1 arms for 'mean'"):
        check("at_most", arms=("a", "b"), bound=0.9)
    assert check("at_most", arms=("a", "b"), derived="difference", bound=0.0).arms == ["a", "b"]


# --- issue 25 items 4 and 8: refutations that ask what the decision asks ------------------------------

def test_a_pair_without_spread_does_not_hide_another_pairs_refutation():
    """Old code: the decision was "refuted" with p_refute NaN (np.min over a NaN pair), so Holm left the claim out
    and the verdict was INCONCLUSIVE; the sequential looks could never cross on it either."""
    values = {"a": [10.0, 10.4, 9.7, 10.2], "b": [10.0, 10.4, 9.7, 10.2], "c": [20.1, 19.8, 20.6, 20.0]}
    out = equivalent(values, check("equivalent", arms="abc", margin=1.0))
    assert out["decision"] == "refuted" and out["no_spread"]
    assert out["p_refute"] < 0.05 / 3 * 3 and math.isfinite(out["p_refute"])
    assert math.isnan(out["p"])  # the a-b pair has no spread: never supported


def test_a_ratio_against_one_reused_run_is_tested_conditionally_on_it():
    """relative_change (new - old) / old with `old` one fixed_seed run (the same value every seed): D is a known
    constant given that run, so D > 0 is certain, not untestable (old code: always "no spread")."""
    values = {"new": [1.30, 1.33, 1.31, 1.28], "old": [1.0] * 4}
    out = at_least(values, check("at_least", arms=("new", "old"), derived="relative_change", bound=0.2))
    assert out["decision"] == "supported" and not out["no_spread"] and out["p"] < 0.01
    against = at_least(values, check("at_least", arms=("new", "old"), derived="relative_change", bound=0.4))
    assert against["decision"] == "refuted" and against["p_refute"] < 0.01
    counts = {"new": [130.0, 133, 131, 128], "old": [100.0] * 4}  # counts can tie by chance: still no spread
    assert at_least(counts, check("at_least", arms=("new", "old"), derived="relative_change", bound=0.2))["no_spread"]


def test_a_ratio_is_refuted_only_with_its_denominator_confidently_positive():
    """p_refute is the larger of L's and D's tests, as the fixed decision has it (item 4: the sequential looks read
    p_refute alone, and refuted ratios with no gap to recover)."""
    no_gap = {"teacher": [10.2, 9.9, 10.1, 9.8], "small": [10.0, 10.1, 9.9, 10.2], "distilled": [13.1, 12.8, 13.2, 13.0]}
    out = at_least(no_gap, check("at_least", arms=("teacher", "small", "distilled"), derived="recovered_fraction",
                                 bound=0.5))
    assert out["decision"] == "undecided" and out["p_refute"] > 0.05
