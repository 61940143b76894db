"""One test per claim spec and variant: pass = REPRODUCED, fail = NOT REPRODUCED (with the numbers),
skip = INCONCLUSIVE or NOT RUN (with the reason). Decided from stored results only; nothing trains here.

REPRO_PROFILE (default auto), REPRO_CLAIMS (default claims), REPRO_OUT (the claims set's output folder,
needed for a claims folder other than ./claims: results from OUT/results, verdicts to
OUT/reports/verdicts.json) and REPRO_RESULTS choose what is judged. The verdicts of the selected tests
(all, or those `-k` keeps) are computed together first, because Holm's correction needs every p-value
of the family; each verdict's line is printed once, in the summary at the end (conftest.py).
"""
from __future__ import annotations

import os

import pytest

from repro.plan import resolve_profile
from repro.spec import SpecError, load_claims
from repro.store import Store
from repro.verdict import decide_guarded, finalize

from conftest import VERDICTS, claims_outputs

CLAIMS = load_claims(os.environ.get("REPRO_CLAIMS", "claims"))
CASES = [(c.id, v) for c in CLAIMS.values() for v in c.variants]


@pytest.fixture(scope="session")
def verdicts(request):
    """Only the selected cases are decided (and form the Holm family): `-k` narrows what is judged."""
    selected = [item.callspec.params for item in request.session.items
                if item.originalname == "test_claim" and hasattr(item, "callspec")]
    profile = resolve_profile(os.environ.get("REPRO_PROFILE", "auto"))
    try:
        store = Store(claims_outputs()[0])
    except SpecError as err:  # an output the set must not write (the shipped verdicts, a claims folder)
        pytest.exit(f"error: {err}", returncode=2)
    # guarded: one result no check foresaw makes its claim NOT RUN, never every verdict lost
    results = finalize([decide_guarded(CLAIMS[c["claim"]], c["variant"], profile, store) for c in selected])
    VERDICTS.update({"profile": profile, "verdicts": results})
    return {(v["claim"], v["variant"]): v for v in results}


@pytest.mark.claims
@pytest.mark.parametrize("claim,variant", CASES, ids=[f"{c}[{v}]" for c, v in CASES])
def test_claim(verdicts, claim, variant):
    # The verdict's line (numbers and reason) is printed once, in the terminal summary; here only its name.
    v = verdicts[(claim, variant)]
    if v["status"] in ("INCONCLUSIVE", "NOT RUN"):
        pytest.skip(v["status"])
    if v["status"] != "REPRODUCED":
        pytest.fail(v["status"], pytrace=False)
