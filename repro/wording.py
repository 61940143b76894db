"""A verdict in words, with its direction: "NOT REPRODUCED: above the claimed band", "INCONCLUSIVE: leans
against (p against the claim 0.04, not after Holm)".

A status alone hides what a reader most wants next: which way the evidence points. These are pure functions
of one verdict as verdicts.json stores it (its estimate, interval, reference, band or bound, and p values);
they recompute no statistic, so the words can never disagree with the verdict. Used by the report's summary
and by `repro export`; no plotting or templating imports, so a notebook or the export stays light.
"""
from __future__ import annotations

import math

INF = math.inf


def number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def estimate_of(verdict: dict) -> tuple[str, float, float, float, float] | None:
    """(what, estimate, low, high, reference) of the quantity the check tests, from whichever keys the
    verdict has: `estimate`/`estimate_ci` (with `estimand`, `reference`), else `diff`/`ci` of arms[0] - arms[1]."""
    est, ci = verdict.get("estimate"), verdict.get("estimate_ci") or []
    if number(est) and len(ci) == 2 and all(map(number, ci)):
        diff = verdict.get("diff")
        ref = verdict.get("reference") if number(verdict.get("reference")) else (est - diff if number(diff) else 0.0)
        return str(verdict.get("estimand") or "estimate"), est, ci[0], ci[1], ref
    diff, ci, arms = verdict.get("diff"), verdict.get("ci") or [], verdict.get("arms") or []
    if number(diff) and len(ci) == 2 and all(map(number, ci)) and len(arms) >= 2:
        return f"{arms[0]} - {arms[1]}", diff, ci[0], ci[1], 0.0
    return None


def claimed_region(v: dict) -> tuple[str, float, float] | None:
    """(kind, low, high): where on the estimate's scale the claim holds. kind is "band" (matches: the source's
    value ± tolerance; equivalent: ± margin), "bound" (at_least, at_most) or "sign" (greater, less, best_of:
    a difference against its reference, usually 0). None for a check kind this does not know."""
    tested = estimate_of(v)
    if tested is None:
        return None
    ref, check = tested[4], v.get("check")
    width = v.get("tolerance") if check == "matches" else v.get("margin") if check == "equivalent" else None
    if check in ("matches", "equivalent") and number(width):
        return "band", ref - width, ref + width
    if check in ("at_least", "at_most"):
        bound = v["bound"] if number(v.get("bound")) else ref
        return ("bound", bound, INF) if check == "at_least" else ("bound", -INF, bound)
    sign = {"greater": 1, "less": -1}.get(check)
    if check == "best_of":
        sign = {"higher": 1, "lower": -1}.get(v.get("better"))
    if sign:
        return ("sign", ref, INF) if sign > 0 else ("sign", -INF, ref)
    return None


def position(v: dict) -> str | None:
    """Where the estimate lies against the claimed region: "inside", "above" or "below" (None: unknown)."""
    region, tested = claimed_region(v), estimate_of(v)
    if region is None:
        return None
    _, low, high = region
    est = tested[1]
    return "below" if est < low else "above" if est > high else "inside"


def where(v: dict, side: str) -> str:
    """The estimate's position in words, in the terms of its check kind."""
    kind = claimed_region(v)[0]
    if kind == "band":
        return "inside the claimed band" if side == "inside" else f"{side} the claimed band"
    if kind == "bound":
        return "on the claimed side of the bound" if side == "inside" else f"{side} the claimed bound"
    return "in the claimed direction" if side == "inside" else "in the opposite direction"


def p_text(p: float) -> str:
    return f"{p:.2g}"


def same_boundary(up, down) -> bool:
    """Whether a look's two boundaries agree (to what the page prints): where they do, one is shown for both."""
    return number(up) and number(down) and math.isclose(up, down, rel_tol=1e-3) or up is down is None


def look_text(look: dict) -> str:
    """One group-sequential look: each side's p beside the boundary that side is tested at. The two can differ
    (the support side's exact sequential law lifts its boundary; a refutation by the union bound keeps a_l), and
    a p against the claim printed beside the support boundary reads as crossed when it is not."""
    def g(x):
        return f"{x:.3g}" if number(x) else "–"
    up, down = look.get("boundary"), look.get("boundary_refute", look.get("boundary"))
    if same_boundary(up, down):
        return f"p {g(look.get('p'))}, against {g(look.get('p_refute'))}; boundary {g(up)}"
    return f"p {g(look.get('p'))} (boundary {g(up)}), against {g(look.get('p_refute'))} (boundary {g(down)})"


def lean(v: dict) -> str:
    """Which way an INCONCLUSIVE verdict points, and on what evidence: a p below alpha that Holm's correction
    took away, else the side of the claimed region the estimate falls on (with both p values, so "leans"
    is never read as more than it is)."""
    alpha = v["alpha"] if number(v.get("alpha")) else 0.05
    p, against = v.get("p"), v.get("p_refute")
    sides = [(p, v.get("p_holm"), "toward", "p"), (against, v.get("p_refute_holm"), "against", "p against the claim")]
    raw = [s for s in sides if number(s[0]) and s[0] < alpha]
    if raw:
        p_raw, holm, word, label = min(raw, key=lambda s: s[0])
        if number(holm) and holm < alpha:  # significant after Holm, yet undecided: something else held it back
            held = any(isinstance(c, dict) and c.get("held") is False for c in v.get("preconditions") or [])
            why = "a precondition failed" if held else "see the reason"
            return f"leans {word} ({label} {p_text(p_raw)}, Holm {p_text(holm)}; undecided: {why})"
        return f"leans {word} ({label} {p_text(p_raw)}, not after Holm)"
    side = position(v)
    if side is None:
        return ""
    ps = ", ".join(f"{word} {p_text(x)}" for x, word in ((p, "p"), (against, "against")) if number(x))
    # a band's printed interval is its support test's dual (1 - 2 alpha); refuting the band is the union of two
    # one-sided tests, each at alpha / 2, so an interval wholly outside the band is not yet a refutation (where
    # there is no p against, as for a source's number at a scale not comparable with it, nothing can refute it)
    kind, low, high = claimed_region(v)
    _, _, ci_low, ci_high, _ = estimate_of(v)
    beyond = kind == "band" and number(against) and (ci_low > high if side == "above" else
                                                     ci_high < low if side == "below" else False)
    return f"leans {'toward' if side == 'inside' else 'against'} (estimate {where(v, side)}" + (
        ", and its interval too: refuting a band tests each side at half the level" if beyond else "") + (
        f"; {ps}" if ps else "") + ")"


def direction(v: dict) -> str:
    """Which way a NOT REPRODUCED estimate missed the claim: above or below the claimed band or bound, in the
    opposite direction, or (a one-sided claim with a margin) smaller than the margin the claim needs."""
    side = position(v)
    if side is None:
        return ""
    if side == "inside":  # a directional claim refuted by its margin: the right sign, too small
        return "smaller than the claimed margin" if number(v.get("margin")) and claimed_region(v)[0] == "sign" else ""
    return where(v, side)


def explain(v: dict) -> str:
    """The words after the status ("" when there is nothing to add: REPRODUCED, NOT RUN)."""
    status = v.get("status")
    if status == "NOT REPRODUCED":
        return direction(v)
    if status == "INCONCLUSIVE":
        return lean(v)
    return ""


def wording(v: dict) -> str:
    """The status with its direction, e.g. "NOT REPRODUCED: in the opposite direction"."""
    detail = explain(v)
    return f"{v.get('status')}: {detail}" if detail else str(v.get("status"))


def better_when(metric) -> str | None:
    """"higher" or "lower": which way a metric is better (accuracies; errors and losses), None where it has no
    better side (fidelity, settle epochs, spreads)."""
    name = str(metric or "").rsplit(":", 1)[-1]
    if name.endswith("acc"):
        return "higher"
    if "error" in name or name.endswith("loss"):
        return "lower"
    return None


def _points(v: dict, x: float) -> str:
    """An accuracy difference in percentage points too (accuracies are stored as fractions)."""
    values = [y for vs in (v.get("values") or {}).values() if isinstance(vs, list) for y in vs if number(y)]
    if str(v.get("metric", "")).endswith("acc") and values and all(0 <= y <= 1 for y in values):
        return f" ({x * 100:+.3g} points)"
    return ""


def miss(v: dict) -> str:
    """By how much a NOT REPRODUCED estimate missed the claimed region ("" otherwise), and, for a number held
    against the source's (`matches`), how far from that number and whether the miss is the better side: a
    teacher 1.9 points more accurate than the source's is not a failure to train it."""
    if v.get("status") != "NOT REPRODUCED":
        return ""
    tested, region, side = estimate_of(v), claimed_region(v), position(v)
    if not tested or not region or side not in ("above", "below"):
        return ""
    what, est, _, _, ref = tested
    edge = region[2] if side == "above" else region[1]
    text = f"by {abs(est - edge):.3g}"
    if v.get("check") == "matches" and number(ref):
        gap = est - ref
        text += f"; {what} {est:.4g} against the source's {ref:.4g}: {gap:+.3g}{_points(v, gap)}"
        better = better_when(v.get("metric"))
        if better:
            good = (gap > 0) == (better == "higher")
            text += (", better than the source's number (a stronger result, not a failure to reach it)" if good
                     else ", worse than the source's number")
    return text
