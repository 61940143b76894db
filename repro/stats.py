"""Check kinds as pure functions on numbers: no torch, no files.

A check takes `values` (arm name -> one number per seed, in the same seed order for every arm)
and the spec's `Check`, and returns a dict with the test's statistic, p-value, a (1 - 2 alpha)
confidence interval on the effect (its bound on the claim's side is the one-sided (1 - alpha)
bound, so "p < alpha" and "the interval excludes 0" agree), an effect size, and a `decision`:
"supported", "refuted" or "undecided". Verdict names (REPRODUCED ...) are given in verdict.py.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .registry import CHECKS


def t_interval(diff: float, se: float, df: float, alpha: float) -> tuple[float, float]:
    if se == 0:
        return diff, diff
    half = sps.t.ppf(1 - alpha, df) * se
    return diff - half, diff + half


def difference_test(a, b, paired: bool, alpha: float) -> dict:
    """Mean difference a - b with a one-sided test of "a > b" (flip the sign for "a < b").

    Paired t when the arms share seeds (same init and data order: the seed's noise cancels),
    Welch's unequal-variance t otherwise.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired:
        d = a - b
        n = len(d)
        diff, se, df = d.mean(), d.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan, n - 1
        sd_pooled = d.std(ddof=1) if n > 1 else math.nan
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        diff, se = a.mean() - b.mean(), math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
        sd_pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if not math.isfinite(se):
        return {"test": "paired t" if paired else "Welch t", "diff": float(diff), "statistic": math.nan,
                "p_greater": math.nan, "df": df, "ci": (math.nan, math.nan), "effect_size": math.nan, "se": se}
    if se == 0:  # every seed gave the same difference: the sign is certain, the size exact
        t, p = (math.copysign(math.inf, diff) if diff else 0.0), (0.0 if diff > 0 else 1.0)
    else:
        t = diff / se
        p = float(sps.t.sf(t, df))
    return {"test": "paired t" if paired else "Welch t", "diff": float(diff), "statistic": float(t),
            "p_greater": p, "df": float(df), "ci": t_interval(float(diff), se, df, alpha),
            "effect_size": float(diff / sd_pooled) if sd_pooled else math.nan, "se": se}


def seeds_to_decide(diff: float, sd: float, alpha: float, power: float = 0.8) -> int | None:
    """Seeds per arm for a one-sided test to detect the observed difference with the given power (normal approx.)."""
    if not diff or not math.isfinite(sd) or sd == 0:
        return None
    z = sps.norm.ppf(1 - alpha) + sps.norm.ppf(power)
    return max(2, math.ceil((z * sd / abs(diff)) ** 2))


def _directional(values, check, sign: int) -> dict:
    """'arms[0] > arms[1]' (sign=+1) or 'arms[0] < arms[1]' (sign=-1), with an optional margin:
    an effect whose interval lies within (-margin, margin) or beyond, on the wrong side, refutes."""
    a, b = (values[arm] for arm in check.arms[:2])
    paired = len(a) == len(b)
    r = difference_test(np.multiply(a, sign), np.multiply(b, sign), paired, check.alpha)
    lo, hi = r["ci"]
    out = {**r, "p": r["p_greater"], "diff": sign * r["diff"], "ci": tuple(sorted((sign * lo, sign * hi))),
           "effect_size": sign * r["effect_size"] if math.isfinite(r["effect_size"]) else math.nan}
    margin = check.margin or 0.0
    if math.isnan(r["p_greater"]):
        out["decision"] = "undecided"
    elif r["p_greater"] < check.alpha:
        out["decision"] = "supported"
    elif hi <= margin:  # the claimed-direction effect is, with confidence, no bigger than the margin
        out["decision"] = "refuted"
    else:
        out["decision"] = "undecided"
    sd = r["se"] * math.sqrt(len(a) if paired else (len(a) + len(b)) / 2) if math.isfinite(r["se"]) else math.nan
    out["seeds_to_decide"] = seeds_to_decide(r["diff"], sd, check.alpha)
    return out


@CHECKS.register("greater")
def greater(values, check) -> dict:
    return _directional(values, check, +1)


@CHECKS.register("less")
def less(values, check) -> dict:
    return _directional(values, check, -1)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    finite = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    m, adjusted, running = len(finite), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
