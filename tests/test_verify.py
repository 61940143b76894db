"""repro verify: stored runs retrained here, bitwise equal or not, consistent with the stored seeds or not."""
from __future__ import annotations

import math

import pytest
import torch

import repro.verify as verify_module
from repro.plan import plan
from repro.run import LocalExecutor
from repro.spec import load_claims
from repro.store import Store
from repro.verify import compare, verify

CPU = torch.device("cpu")


@pytest.fixture
def stored(tmp_path):
    """The smoke profile of hinton-kd-helps trained into a scratch store (synthetic data, seconds)."""
    torch.set_num_threads(1)
    claims = {k: c for k, c in load_claims("claims").items() if k == "hinton-kd-helps"}
    store = Store(tmp_path / "results", tmp_path / "cache")
    LocalExecutor(store, CPU, log=lambda _: None).submit(plan(list(claims.values()), "smoke", store))
    return claims, store


def test_runs_retrained_on_the_same_machine_and_threads_are_bitwise_equal_and_nothing_stored_changes(stored):
    claims, store = stored
    before = {p: p.read_bytes() for p in store.root.rglob("*.json")}
    out = verify(claims, "smoke", store, 3, CPU, log=lambda _: None)
    assert len(out["runs"]) == 3 and out["bitwise"] == 3 and out["consistent"] is True
    assert len({r["run"].split(" seed")[0] for r in out["runs"]}) == 3  # one run of each arm first
    assert {p: p.read_bytes() for p in store.root.rglob("*.json")} == before


def test_a_loop_that_gives_other_numbers_is_not_bitwise_and_a_shifted_one_is_inconsistent(stored, monkeypatch):
    claims, store = stored
    real = verify_module.train

    def shifted(run, *args, **kwargs):  # a loop whose test errors are far off the stored seeds' spread
        result, model = real(run, *args, **kwargs)
        for m in [*result["epochs"], result["final"]]:
            m["test_errors"] += 2000
        return result, model

    monkeypatch.setattr(verify_module, "train", shifted)
    out = verify(claims, "smoke", store, 3, CPU, log=lambda _: None)
    assert out["bitwise"] == 0 and out["consistent"] is False and out["p_consistent"] < 0.05


def test_the_consistency_p_is_two_sided_t_on_the_arms_spread():
    class Job:
        claim, variant, arm, metric = "c", "v", "a", "test_errors"
        run = type("R", (), {"seed": 0, "key": "k" * 64})()
    stored = {"epochs": [{"test_errors": 100}], "final": {"test_errors": 100}, "device": "x", "status": "done"}
    fresh = {"epochs": [{"test_errors": 110}], "final": {"test_errors": 110}, "device": "y", "status": "done"}
    row = compare(Job, stored, fresh, [90.0, 100.0, 110.0], integer=True)
    sd = math.sqrt(100 + 1 / 12)
    assert row["t"] == pytest.approx(10 / (sd * math.sqrt(2)))
    from scipy import stats
    assert row["p"] == pytest.approx(2 * stats.t.sf(row["t"], 2)) and not row["bitwise"]
