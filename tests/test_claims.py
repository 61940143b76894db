"""One test per claim spec and variant: pass = REPRODUCED, fail = NOT REPRODUCED (with the numbers),
skip = INCONCLUSIVE or NOT RUN (with the reason). Decided from stored results only; nothing trains here.

REPRO_PROFILE (default auto), REPRO_CLAIMS (default claims), REPRO_OUT (the claims set's output folder,
needed for a claims folder other than ./claims: results from OUT/results, verdicts to
OUT/reports/verdicts.json) and REPRO_RESULTS choose what is judged. Every claim of the folder is decided
first, from its stored results, because Holm corrects within the folder's family (repro.family), never
within what `-k` selects; verdicts.json gets all of them (a selection never shrinks it), and the summary
at the end prints the selected ones' lines and the family (conftest.py).
"""
from __future__ import annotations

import os

import pytest

from repro.plan import resolve_profile
from repro.spec import SpecError, load_claims
from repro.store import Store
from repro.family import FamilyError, declared, describe
from repro.verdict import families, judge_folder

from conftest import SELECTED, VERDICTS, claims_outputs

FOLDER = os.environ.get("REPRO_CLAIMS", "claims")
CLAIMS = load_claims(FOLDER)
CASES = [(c.id, v) for c in CLAIMS.values() for v in c.variants]


@pytest.fixture(scope="session")
def verdicts(request):
    """Every claim of the folder is decided (the Holm family is the folder's); `-k` narrows what is shown."""
    selected = [(item.callspec.params["claim"], item.callspec.params["variant"]) for item in request.session.items
                if item.originalname == "test_claim" and hasattr(item, "callspec")]
    profile = resolve_profile(os.environ.get("REPRO_PROFILE", "auto"))
    try:
        store = Store(claims_outputs()[0])
    except SpecError as err:  # an output the set must not write (the shipped verdicts, a claims folder)
        pytest.exit(f"error: {err}", returncode=2)
    try:  # every claim of the folder, guarded: one result no check foresaw makes its claim NOT RUN
        results = judge_folder(FOLDER, CLAIMS, profile, store)
    except FamilyError as err:
        pytest.exit(f"error {err}", returncode=2)
    named = families(results)
    VERDICTS.update({"profile": profile, "verdicts": results, "holm_families": named,
                     "holm_family_text": describe(FOLDER, profile, named, declared(FOLDER, CLAIMS) is not None),
                     **({"registration": results[0]["registration"]} if results else {})})
    SELECTED[:] = selected
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
