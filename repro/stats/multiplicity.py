"""Multiplicity: Holm's step-down correction over a family of claims (which claims form a family is declared
per claims folder: repro/family.py)."""
from __future__ import annotations

import math


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted)."""
    finite = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    m, adjusted, running = len(finite), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
