"""Check kinds against scipy's own tests, and Holm against its definition."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from repro.spec import Check
from repro.stats import difference_test, holm, less


def check(**kw):
    return Check(**{"kind": "less", "metric": "m", "arms": ["a", "b"], "alpha": 0.05, "justification": "test", **kw})


def test_welch_matches_scipy():
    a, b = [101.0, 98, 104, 99], [110.0, 115, 108, 113, 109]
    ours = difference_test(a, b, paired=False, alpha=0.05)
    ref = sps.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert ours["statistic"] == pytest.approx(ref.statistic, abs=1e-10)
    assert ours["p_greater"] == pytest.approx(ref.pvalue, abs=1e-10)


def test_paired_matches_scipy_and_ci_is_dual_to_p():
    a, b = [101.0, 98, 104, 99], [110.0, 105, 108, 101]
    ours = difference_test(a, b, paired=True, alpha=0.05)
    ref = sps.ttest_rel(a, b, alternative="greater")
    assert ours["p_greater"] == pytest.approx(ref.pvalue, abs=1e-10)
    lo, _ = ours["ci"]
    # the one-sided (1 - alpha) lower bound excludes 0 exactly when p < alpha
    assert (lo > 0) == (ours["p_greater"] < 0.05)


def test_less_decides_supported_refuted_undecided():
    assert less({"a": [70.0, 72, 71], "b": [140.0, 150, 146]}, check())["decision"] == "supported"
    assert less({"a": [140.0, 150, 146], "b": [70.0, 72, 71]}, check())["decision"] == "refuted"
    assert less({"a": [100.0, 130, 90], "b": [110.0, 100, 120]}, check())["decision"] == "undecided"


def test_holm_matches_definition():
    p = [0.01, 0.04, 0.03, math.nan]
    adjusted = holm(p)
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])


def test_false_positive_rate_under_the_null_is_at_most_alpha():
    """Two identical arms: 'less' must say REPRODUCED at most alpha of the time (Monte-Carlo error ~0.007)."""
    rng = np.random.default_rng(0)
    hits = sum(less({"a": list(rng.normal(100, 5, 3)), "b": list(rng.normal(100, 5, 3))}, check())["decision"]
               == "supported" for _ in range(2000))
    assert hits / 2000 <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000)
