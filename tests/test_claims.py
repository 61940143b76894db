"""One test per claim spec and variant: pass = REPRODUCED, fail = NOT REPRODUCED (with the numbers),
skip = INCONCLUSIVE or NOT RUN (with the reason). Decided from stored results only; nothing trains here.

REPRO_PROFILE (default auto), REPRO_RESULTS (default results) and REPRO_CLAIMS (default claims)
choose what is judged. All verdicts are computed together first, because Holm's correction
needs every p-value of the report.
"""
from __future__ import annotations

import os

import pytest

from repro.plan import resolve_profile
from repro.spec import load_claims
from repro.store import Store
from repro.verdict import decide_all

from conftest import VERDICTS

CLAIMS = load_claims(os.environ.get("REPRO_CLAIMS", "claims"))
CASES = [(c.id, v) for c in CLAIMS.values() for v in c.variants]


@pytest.fixture(scope="session")
def verdicts():
    profile = resolve_profile(os.environ.get("REPRO_PROFILE", "auto"))
    results = decide_all(CLAIMS, profile, Store(os.environ.get("REPRO_RESULTS", "results")))
    VERDICTS.update({"profile": profile, "verdicts": results})
    return {(v["claim"], v["variant"]): v for v in results}


@pytest.mark.claims
@pytest.mark.parametrize("claim,variant", CASES, ids=[f"{c}[{v}]" for c, v in CASES])
def test_claim(verdicts, claim, variant):
    v = verdicts[(claim, variant)]
    line = f"{claim} [{variant}] {v['profile']}: {v['status']}: {v['reason']}"
    if v["status"] in ("INCONCLUSIVE", "NOT RUN"):
        pytest.skip(line)
    assert v["status"] == "REPRODUCED", line
