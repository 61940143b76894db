"""Calibration at length: the regimes of tests/test_calibration.py and tests/test_sequential.py with more simulated
data sets, and the power the issue-25 changes cost or gain, before (the old rule) and after (today's code).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/calibration.py [--sims 20000]

Each rate is the share of simulated data sets decided wrongly at the least favourable null (or rightly, for power),
through the registered check kinds themselves (repro.registry.CHECKS); "before" swaps in the old rule by
monkeypatching repro.stats. 20k data sets give a Monte Carlo half-width of about 0.003 at a rate of 0.05.
benchmarks/calibration.txt holds what it printed (299 s on one core); `--skew` runs only the skew tables (the paired t
with and without stats.skew_factor, and the rules tried).
"""
from __future__ import annotations

import argparse
import math
import time
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
    """The old rules: the integer allowance (1/12 before, 1/24 now), the unequal-sizes df share (1 before) and the
    paired t's skew factor on its standard error (hedge=False: none, as before). Each is set where it is defined
    (repro/stats/small_sample.py) and where the check kinds read it (checks.py imports some by name)."""
    modules = (SS, SC)
    saved = [{k: getattr(m, k) for k in ("_rounding_var", "DF_SHRINK", "skew_factor") if hasattr(m, k)} for m in modules]
    old_round = SS._rounding_var
    changes = {}
    if allowance is not None:
        changes["_rounding_var"] = lambda *xs: np.where(old_round(*xs) > 0, allowance, 0.0)
    if shrink is not None:
        changes["DF_SHRINK"] = shrink
    if not hedge:
        changes["skew_factor"] = lambda n: np.ones(np.shape(n))
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
    print(f"{'spread':>6} | {'none':>13} | {'1/24 (now)':>13} | {'1/12 (before)':>13}   level / power at 0.5, 1, 2 sd")
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


def welch_table(rng, sims):
    print("\n== Welch, unequal sizes and variances (less; wrong REPRODUCED at the null, worst side) ==")
    print(f"{'arms':>24} | {'now':>6} | {'before':>6}")
    regimes = {f"{na} at sd {sa} v {nb} at sd 1": (na, nb, sa) for na, nb in ((3, 5), (3, 8), (3, 12), (4, 8), (5, 10))
               for sa in (1, 2, 3, 5)}
    def welch_row(name, a, b):  # wrong REPRODUCED, worse side, with the small-arm df rule now and before
        cells = []
        for shrink in (None, 1.0):
            with rule(shrink=shrink):
                cells.append(max(supported("less", {"a": a, "b": b}, paired=False),
                                 supported("less", {"a": -a, "b": -b}, paired=False)))
        print(f"{name:>24} | {cells[0]:.4f} | {cells[1]:.4f}")

    for name, (na, nb, sa) in regimes.items():
        welch_row(name, rng.normal(0, sa, (sims, na)), rng.normal(0, 1, (sims, nb)))
    for name, noise in (("3 v 8, all lognormal", lognormal), ("3 v 8, all t3", lambda r, s: r.standard_t(3, s))):
        welch_row(name, noise(rng, (sims, 3)), noise(rng, (sims, 8)))
    print("power (greater), equal variances (sd 1), effect 0.5, 1, 2 sd of a difference of two runs:")
    for na, nb in ((3, 8), (3, 5), (4, 8), (5, 10)):
        cells = []
        for shrink in (None, 1.0):
            with rule(shrink=shrink):
                row = []
                for sd_units in (0.5, 1.0, 2.0):
                    a = sd_units * math.sqrt(2) + rng.normal(0, 1, (sims, na))
                    row.append(supported("greater", {"a": a, "b": rng.normal(0, 1, (sims, nb))}, paired=False))
                cells.append("/".join(f"{p:.2f}" for p in row))
        print(f"{na} v {nb}: now {cells[0]}, before {cells[1]}")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=20_000)
    parser.add_argument("--skew", action="store_true",
                        help="only the skew tables (a part of benchmarks/calibration.txt)")
    args = parser.parse_args()
    rng = np.random.default_rng(20251201)
    started = time.time()
    print(f"{args.sims} simulated data sets per cell (Monte Carlo half-width at 0.05: "
          f"{3 * math.sqrt(ALPHA * (1 - ALPHA) / args.sims):.4f})")
    tables = (skew_table, skew_alternatives) if args.skew else (
        integer_table, welch_table, skew_table, skew_alternatives, sequential_ratio_table, sequential_table)
    for table in tables:
        table(rng, args.sims)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
