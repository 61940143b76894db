"""Stored results -> verdicts: statuses, Holm across a report, preconditions, diverged runs, NOT RUN,
the keys the report reads, and the one line per claim that `pytest -m claims` prints.

The store is replaced by in-memory results (monkeypatching `collect`), so nothing here trains or
touches files beyond a temporary claim spec.
"""
from __future__ import annotations

import math

import pytest
import yaml

import conftest
from repro import verdict as V
from repro.spec import load_claim

REPORT_KEYS = {"claim", "variant", "profile", "status", "reason", "p", "p_holm", "ci", "diff", "effect_size", "test",
               "statistic", "df", "values", "seeds", "preconditions", "justification", "alpha", "margin", "metric",
               "arms", "check", "wall_s", "devices", "versions", "commits", "run_keys"}
PRE = {"kind": "less", "metric": "test_errors", "arms": ["teacher", "small"], "alpha": 0.05,
       "justification": "a teacher no better than its student has nothing to transfer"}


def make_claim(tmp_path, check: dict, preconditions=(), name="toy"):
    doc = {"id": name, "source": {"file": "x.txt", "quote": "q"}, "statement": "s",
           "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                        "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
           "arms": {"teacher": {}, "small": {}, "distilled": {}, "other": {}},
           "check": {"metric": "test_errors", "alpha": 0.05, "justification": "why", **check},
           "preconditions": list(preconditions),
           "profiles": {"smoke": {"seeds": [0, 1, 2], "scale": "toy"}}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_claim(path)


def run(value, status="done", key=None, metric="test_errors"):
    return {"status": status, "final": {metric: value} if status == "done" else {}, "key": key or f"k{value}",
            "wall_s": 2.0, "device": "cpu", "provenance": {"torch": "2.x", "python": "3.x", "git_commit": "abc"}}


def results(**arms):
    return {arm: [v if isinstance(v, dict) else run(v, key=f"{arm}{i}") for i, v in enumerate(vs)]
            for arm, vs in arms.items()}


GOOD = dict(teacher=[67.0, 70, 64], small=[146.0, 140, 151], distilled=[80.0, 74, 85], other=[150.0, 141, 155])


@pytest.fixture
def stored(monkeypatch):
    """stored[claim_id] = arm -> runs; `collect` serves those (or raises what it was given)."""
    table: dict = {}

    def collect(claim, variant, profile, store):
        found = table[claim.id]
        if isinstance(found, Exception):
            raise found
        return found

    monkeypatch.setattr(V, "collect", collect)
    return table


def verdicts_for(claims):
    return V.finalize([V.decide(c, "default", "smoke", store=None) for c in claims])


def test_reproduced_has_every_key_the_report_reads(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, [PRE])
    stored["toy"] = results(**GOOD)
    [v] = verdicts_for([claim])
    assert v["status"] == "REPRODUCED", v["reason"]
    assert REPORT_KEYS <= set(v)
    assert v["p_holm"] == pytest.approx(v["p"]) and v["holm_family"] == 1
    assert v["preconditions"][0]["held"] and v["diverged"] == {"distilled": 0, "small": 0}
    assert "distilled - small on test_errors = " in v["reason"] and "sign-flip permutation p = 0.125" in v["reason"]
    assert "cannot reach alpha" in v["reason"]  # 3 seeds: the companion's floor is 1/8


def test_holm_across_the_report_and_shown_beside_raw_p(tmp_path, stored):
    """Three tested claims with raw p 1e-4, 0.032, 0.046: Holm gives 3e-4, 0.063, 0.063, so only the
    first stays REPRODUCED; the others are INCONCLUSIVE with the reason. NOT RUN is not in the family."""
    claims = []
    for name, small in [("c-strong", [146.0, 141, 151]), ("c-medium", [83.0, 79, 87]), ("c-weak", [83.0, 80, 87]),
                        ("c-missing", None)]:
        claims.append(make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, name=name))
        stored[name] = V.Missing("results are missing") if small is None else \
            results(distilled=GOOD["distilled"], small=small)
    out = {v["claim"]: v for v in verdicts_for(claims)}
    raw = [out[n]["p"] for n in ("c-strong", "c-medium", "c-weak")]
    assert all(p < 0.05 for p in raw), raw
    assert out["c-strong"]["holm_family"] == 3 and math.isnan(out["c-missing"]["p_holm"])
    for n in ("c-strong", "c-medium", "c-weak"):
        assert out[n]["p_holm"] >= out[n]["p"]
        assert f"(Holm {out[n]['p_holm']:.3g})" in out[n]["reason"]
    assert out["c-medium"]["p_holm"] == pytest.approx(2 * out["c-medium"]["p"])
    assert out["c-weak"]["p_holm"] == out["c-medium"]["p_holm"]  # step-down: never below an earlier one
    for n in ("c-medium", "c-weak"):
        assert out[n]["status"] == "INCONCLUSIVE" and "not after Holm across 3 tested claims" in out[n]["reason"]
    assert out["c-strong"]["status"] == "REPRODUCED"
    assert out["c-missing"]["status"] == "NOT RUN" and out["c-missing"]["reason"] == "results are missing"


def test_failed_precondition_is_inconclusive_with_numbers_never_not_reproduced(tmp_path, stored):
    """The teacher is worse than the small net: whatever the claim's own numbers say (here they would
    refute it), nothing was tested."""
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, [PRE])
    stored["toy"] = results(teacher=[160.0, 158, 166], small=[146.0, 140, 151], distilled=[190.0, 185, 199])
    [v] = verdicts_for([claim])
    assert v["decision"] == "refuted"  # the check alone would say NOT REPRODUCED ...
    assert v["status"] == "INCONCLUSIVE"  # ... but the premise failed
    assert v["reason"].startswith("precondition failed: teacher < small on test_errors")
    assert "teacher 160, 158, 166" in v["reason"] and "p = " in v["reason"]
    assert v["preconditions"][0]["held"] is False and v["preconditions"][0]["values"]["teacher"] == [160.0, 158, 166]
    assert math.isnan(v["p_holm"])  # not part of the Holm family


def test_diverged_runs_are_counted_not_dropped(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, [PRE])
    runs = results(**GOOD)
    runs["distilled"][1] = run(None, status="diverged", key="d1")
    stored["toy"] = runs
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE"
    assert v["diverged"] == {"distilled": 1, "small": 0}
    assert "distilled 1 of 3" in v["reason"] and "small 0 of 3" in v["reason"]
    assert math.isnan(v["values"]["distilled"][1]) and len(v["values"]["distilled"]) == 3


def test_non_finite_metric_counts_as_diverged(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    runs = results(**GOOD)
    runs["small"][0] = run(math.nan, key="s0")
    stored["toy"] = runs
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and v["diverged"]["small"] == 1


def test_metric_reducers_and_null_values(tmp_path, stored):
    """`first:test_errors` reads epoch 1 (repro.metrics); a stored null counts as diverged."""
    claim = make_claim(tmp_path, {"kind": "less", "metric": "first:test_errors", "arms": ["distilled", "small"]})
    runs = results(**GOOD)
    for arm, rs in runs.items():
        for r in rs:
            r["epochs"] = [{"test_errors": r["final"]["test_errors"] * 2}, {"test_errors": r["final"]["test_errors"]}]
    stored["toy"] = runs
    [v] = verdicts_for([claim])
    assert v["values"]["distilled"] == [160.0, 148.0, 170.0] and v["status"] == "REPRODUCED"
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    runs["small"][2]["final"]["test_errors"] = None
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and v["diverged"] == {"distilled": 0, "small": 1}


def test_diverged_precondition_runs_make_the_precondition_fail(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, [PRE])
    runs = results(**GOOD)
    runs["teacher"][2] = run(None, status="diverged", key="t2")
    stored["toy"] = runs
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and "teacher 1 of 3" in v["reason"]


def test_not_run_names_why(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    stored["toy"] = V.Missing("dataset 'mnist' not found: data lacks train-images (set REPRO_DATA)")
    [v] = verdicts_for([claim])
    assert v["status"] == "NOT RUN" and "REPRO_DATA" in v["reason"] and math.isnan(v["p"])
    stored["toy"] = results(**{arm: [run(1.0, metric="test_acc", key=f"{arm}{i}") for i in range(3)] for arm in GOOD})
    [v] = verdicts_for([claim])
    assert v["status"] == "NOT RUN" and "metric 'test_errors' is not in this run's results" in v["reason"]


def test_inconclusive_says_how_many_seeds_would_decide(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    stored["toy"] = results(distilled=[100.0, 130, 90], small=[110.0, 100, 120])
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and v["seeds_to_decide"] > 3
    assert f"about {v['seeds_to_decide']} seeds per arm would decide it" in v["reason"]


KIND_CASES = {
    "greater": ({"kind": "greater", "arms": ["small", "distilled"]}, "REPRODUCED"),
    "equivalent": ({"kind": "equivalent", "arms": ["small", "other"], "margin": 30}, "REPRODUCED"),
    "equivalent refuted": ({"kind": "equivalent", "arms": ["small", "distilled"], "margin": 10}, "NOT REPRODUCED"),
    "matches": ({"kind": "matches", "arms": ["teacher"], "value": 67, "tolerance": 20}, "REPRODUCED"),
    "matches refuted": ({"kind": "matches", "arms": ["teacher"], "value": 146, "tolerance": 20}, "NOT REPRODUCED"),
    "best_of": ({"kind": "best_of", "arms": ["teacher", "small", "other"], "better": "lower"}, "REPRODUCED"),
    "best_of top 2": ({"kind": "best_of", "arms": ["distilled", "teacher", "small", "other"], "better": "lower",
                       "top": 2}, "REPRODUCED"),
    "at_least": ({"kind": "at_least", "arms": ["teacher", "small", "distilled"], "derived": "recovered_fraction",
                  "bound": 0.5}, "REPRODUCED"),
    "at_least mean": ({"kind": "at_least", "arms": ["small"], "bound": 100}, "REPRODUCED"),
}


@pytest.mark.parametrize("name", list(KIND_CASES))
def test_every_kind_reaches_a_verdict_with_its_spec_keys(tmp_path, stored, name):
    check, expected = KIND_CASES[name]
    claim = make_claim(tmp_path, check)
    stored["toy"] = results(**GOOD)
    [v] = verdicts_for([claim])
    assert v["status"] == expected, v["reason"]
    assert REPORT_KEYS <= set(v)
    for key in ("margin", "tolerance", "value", "better", "derived", "bound"):
        assert v[key] == check.get(key)
    assert v["check"] == check["kind"] and "claim " in v["reason"]


def test_a_single_run_reused_for_every_seed_counts_once(tmp_path, stored):
    """A fixed-seed teacher stored once per student seed is one observation for `matches`: with one run
    there is no spread, so the verdict cannot be a (pseudo-replicated) certainty."""
    claim = make_claim(tmp_path, {"kind": "matches", "arms": ["teacher"], "value": 67, "tolerance": 20})
    stored["toy"] = {"teacher": [run(66.0, key="same")] * 3}
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and math.isnan(v["p"])
    assert v["values"] == {"teacher": [66.0, 66.0, 66.0]}


def test_pytest_prints_one_line_per_claim(monkeypatch):
    lines, sections = [], []

    class Reporter:
        def section(self, title):
            sections.append(title)

        def write_line(self, line):
            lines.append(line)

    monkeypatch.setitem(conftest.VERDICTS, "profile", "smoke")
    monkeypatch.setitem(conftest.VERDICTS, "verdicts", [
        {"claim": "a", "variant": "x", "status": "REPRODUCED", "reason": "fine"},
        {"claim": "b", "variant": "y", "status": "NOT RUN", "reason": "no data"}])
    conftest.pytest_terminal_summary(Reporter())
    assert sections == ["claim verdicts (smoke profile)"]
    assert lines == ["REPRODUCED     a [x]: fine", "NOT RUN        b [y]: no data", "verdicts: 1 REPRODUCED, 1 NOT RUN"]
