"""The report's lines a reader checks first: counts printed as counts, the summary's estimand and which way
the evidence points, a precondition's bound, a profile's `comparable`, external evidence; and kd-repro's
own loss self-tests only in the shipped claims' report."""
from __future__ import annotations

import os
from pathlib import Path

from repro.report import num, render
from test_report import CLAIM_ID, claim, verdict  # noqa: F401  (claim is a fixture)


def test_counts_print_as_counts_not_in_exponent_notation():
    assert num(1730.0) == "1730" and num(56.58) == "56.6" and num(0.000123) == "0.000123"
    assert num(1.5e12) == "1.5e+12"


def test_the_summary_shows_the_estimand_the_claim_and_the_p_against_it(claim):
    v = verdict(status="NOT REPRODUCED", estimand="distilled - small", estimate=37.2, estimate_ci=[17.8, 56.6],
                hypothesis="distilled < small", p_refute=0.0075, p_refute_holm=0.045)
    page = render({"profile": "smoke", "verdicts": [v]}, {CLAIM_ID: claim})
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    # the claimed column holds the hypothesis, the measured one the named quantity with its interval
    assert "distilled - small = 37.2 [17.8, 56.6]" in summary and ">distilled &lt; small<" in summary
    # one p: the Holm-corrected p of the side that decided it (against the claim, for NOT REPRODUCED)
    assert ">0.045<br><span class=\"muted\">against the claim, Holm</span>" in summary and "0.0075" not in summary


def test_a_preconditions_line_keeps_its_bound_and_derived_quantity(claim):
    pre = {"check": "at_least", "arms": ["teacher", "small"], "metric": "test_errors", "held": False, "p": 0.3,
           "justification": "j", "bound": 0.5, "derived": "recovered_fraction", "estimand": "recovered fraction",
           "estimate": 0.41, "estimate_ci": [0.2, 0.6], "hypothesis": "recovered fraction >= 0.5"}
    page = render({"profile": "smoke", "verdicts": [verdict(status="INCONCLUSIVE", preconditions=[pre])]},
                  {CLAIM_ID: claim})
    assert ("precondition recovered fraction &gt;= 0.5 on <code>test_errors</code>: recovered fraction = 0.41 "
            "[0.2, 0.6], bound 0.5, derived recovered_fraction (p = 0.3)") in page


def test_a_profiles_comparable_statement_appears_beside_its_scale(claim):
    from repro.spec import Comparable
    profiles = {**claim.profiles, "smoke": claim.profiles["smoke"].model_copy(
        update={"comparable": Comparable(numbers=False, why="3 of the 3000 epochs")})}
    page = render({"profile": "smoke", "verdicts": [verdict()]}, {CLAIM_ID: claim.model_copy(update={"profiles": profiles})})
    assert "numbers not comparable with the source's: 3 of the 3000 epochs" in page


def test_loss_self_tests_are_recorded_only_for_the_shipped_claims(monkeypatch):
    import conftest
    monkeypatch.delenv("REPRO_CLAIMS", raising=False)
    assert conftest.shipped_claims()
    monkeypatch.setenv("REPRO_CLAIMS", "examples/claims")
    assert not conftest.shipped_claims()
