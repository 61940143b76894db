"""Calibration at length: the regimes of tests/test_calibration.py and tests/test_sequential.py with more simulated
data sets, and the power the issue-25 changes cost or gain, before (the old rule) and after (today's code).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/calibration.py [--sims 20000]

Each rate is the share of simulated data sets decided wrongly at the least favourable null (or rightly, for power),
through the registered check kinds themselves (repro.registry.CHECKS); "before" swaps in the old rule by
monkeypatching repro.stats. 20k data sets give a Monte Carlo half-width of about 0.003 at a rate of 0.05.
benchmarks/calibration.txt holds what it printed.
"""
from __future__ import annotations

import argparse
import math
import time
from contextlib import contextmanager

import numpy as np

from repro import stats as S
from repro.registry import CHECKS
from repro.sequential import Design, judge
from repro.spec import Check

ALPHA = 0.05


def check(kind, arms, **kw) -> Check:
    return Check(kind=kind, metric="m", arms=arms, alpha=ALPHA, justification="calibration", **kw)


def supported(kind, values, **kw) -> float:
    out = CHECKS.get(kind)(values, check(kind, list(values), **kw))
    return float(np.mean(np.asarray(out["decision"]) == "supported"))


@contextmanager
def rule(allowance=None, shrink=None):
    """The old rules: the integer allowance (1/12 before, 1/24 now) and the unequal-sizes df share (1 before)."""
    old_round, old_shrink = S._rounding_var, S.DF_SHRINK
    if allowance is not None:
        S._rounding_var = lambda *xs: np.where(old_round(*xs) > 0, allowance, 0.0)
    if shrink is not None:
        S.DF_SHRINK = shrink
    try:
        yield
    finally:
        S._rounding_var, S.DF_SHRINK = old_round, old_shrink


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


def skew_table(rng, sims):
    print("\n== skew: paired, one arm lognormal (sd 1) against a normal arm; wrong REPRODUCED per side ==")
    for sigma in (0.25, 0.5, 1.0):
        for n in (3, 5, 8):
            a, b = lognormal(rng, (sims, n), sigma), rng.normal(0, 1, (sims, n))
            print(f"sigma {sigma} ({n} seeds): greater {supported('greater', {'a': a, 'b': b}):.4f}, "
                  f"less {supported('less', {'a': a, 'b': b}):.4f}")
    for n in (3, 5):
        a, b = rng.standard_t(3, (sims, n)), rng.standard_t(3, (sims, n))
        print(f"t3 arms ({n} seeds): less {supported('less', {'a': a, 'b': b}):.4f}")


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
    import repro.sequential as SQ
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
    args = parser.parse_args()
    rng = np.random.default_rng(20251201)
    started = time.time()
    print(f"{args.sims} simulated data sets per cell (Monte Carlo half-width at 0.05: "
          f"{3 * math.sqrt(ALPHA * (1 - ALPHA) / args.sims):.4f})")
    for table in (integer_table, welch_table, skew_table, sequential_ratio_table, sequential_table):
        table(rng, args.sims)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
