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


def make_claim(tmp_path, check: dict, preconditions=(), name="toy", arms=None):
    doc = {"id": name, "source": {"file": "x.txt", "quote": "q"}, "statement": "s",
           "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                        "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
           "arms": arms or {"teacher": {}, "small": {}, "distilled": {}, "other": {}},
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


GOOD = dict(teacher=[67.0, 70, 64], small=[146.0, 141, 151], distilled=[80.0, 74, 85], other=[150.0, 141, 155])


@pytest.fixture
def stored(monkeypatch):
    """stored[claim_id] = arm -> runs; `collect` serves those (or raises what it was given)."""
    table: dict = {}

    def collect(claim, variant, profile, store, seeds=None, arms=None, precision=None):
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
    assert v["p_holm"] == pytest.approx(v["p"]) and v["holm_family"] == ["toy[default]"]
    assert v["preconditions"][0]["held"] and v["diverged"] == {"distilled": 0, "small": 0}
    assert "distilled - small on test_errors = " in v["reason"] and "sign-flip permutation p = 0.125" in v["reason"]
    assert "cannot reach alpha" in v["reason"]  # 3 seeds: the companion's floor is 1/8


def test_holm_across_the_report_and_shown_beside_raw_p(tmp_path, stored):
    """Three tested claims with raw p 2e-5, 0.029, 0.041: Holm gives 7e-5, 0.057, 0.057, so only the
    first stays REPRODUCED; the others are INCONCLUSIVE with the reason. NOT RUN is not in the family."""
    claims = []
    for name, small in [("c-strong", [146.0, 141, 151]), ("c-medium", [84.0, 80, 88]), ("c-weak", [83.0, 80, 88]),
                        ("c-missing", None)]:
        claims.append(make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, name=name))
        stored[name] = V.Missing("results are missing") if small is None else \
            results(distilled=GOOD["distilled"], small=small)
    out = {v["claim"]: v for v in verdicts_for(claims)}
    raw = [out[n]["p"] for n in ("c-strong", "c-medium", "c-weak")]
    assert all(p < 0.05 for p in raw), raw
    assert out["c-strong"]["holm_family"] == ["c-strong[default]", "c-medium[default]", "c-weak[default]"] and math.isnan(out["c-missing"]["p_holm"])
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


# --- real stored files (issue 14): verdicts from stored results alone, one bad file never stops the rest ---

def store_all(tmp_path, claim, per_arm: dict):
    """Save a result for every run the claim's smoke profile plans; returns the Store and the paths."""
    from repro.plan import plan_claim
    from repro.store import Store
    store, paths = Store(tmp_path / "results", tmp_path / "cache"), {}
    for arm, runs in plan_claim(claim, "default", "smoke").items():
        for i, r in enumerate(runs):
            path = store.path("smoke", claim.id, "default", arm, r)
            value = per_arm.get(arm, [100.0, 103, 101])[i]
            store.save(path, r, conftest.made_up_result(r, value), {"torch": "2.x", "python": "3.x", "git_commit": None})
            paths[(arm, i)] = path
    return store, paths


def test_one_forged_file_is_not_run_with_its_path_and_the_rest_is_decided(tmp_path):
    """Issue 14: `wall_s: "slow"` with a recomputed checksum made the whole claims session error."""
    from repro.store import checksum
    import json
    bad = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, name="bad")
    good = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, name="good")
    values = {"distilled": [80.0, 74, 85], "small": [146.0, 141, 151]}
    store, paths = store_all(tmp_path, bad, values)
    store_all(tmp_path, good, values)
    path = paths[("small", 1)]
    payload = {**json.loads(path.read_text()), "wall_s": "slow"}
    payload["checksum"] = checksum(payload)
    path.write_text(json.dumps(payload))
    out = {v["claim"]: v for v in V.decide_all({"bad": bad, "good": good}, "smoke", store)}
    # its path as the report may show it: relative, or its last parts, never this machine's absolute path
    assert out["bad"]["status"] == "NOT RUN" and "wall_s" in out["bad"]["reason"]
    assert "results/smoke/bad/default/small/" + path.name in out["bad"]["reason"] and str(tmp_path) not in out["bad"]["reason"]
    assert out["good"]["status"] == "REPRODUCED", out["good"]["reason"]
    # a copy of seed 0's file under seed 2's name is not seed 2's result
    good_paths = store_all(tmp_path, good, values)[1]
    good_paths[("small", 2)].write_text(good_paths[("small", 0)].read_text())
    v = V.decide(good, "default", "smoke", store)
    assert v["status"] == "NOT RUN" and "corrupt result" in v["reason"] and "not the one its name says" in v["reason"]


def test_unexpected_errors_make_one_claim_not_run(tmp_path, monkeypatch):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    monkeypatch.setattr(V, "collect", lambda *a, **k: (_ for _ in ()).throw(TypeError("boom")))
    [v] = V.decide_all({"toy": claim}, "smoke", None)
    assert v["status"] == "NOT RUN" and v["reason"] == "could not be decided: TypeError: boom"


def test_missing_data_matters_only_for_missing_results(tmp_path, monkeypatch):
    """Issue 14: with REPRO_DATA unset every verdict became NOT RUN although every result was stored."""
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    store, paths = store_all(tmp_path, claim, {"distilled": [80.0, 74, 85], "small": [146.0, 141, 151]})
    monkeypatch.setattr(V, "availability", lambda name: f"dataset '{name}' not found")
    monkeypatch.setattr(V, "weights_availability", lambda *a: "no ImageNet weights")
    [v] = V.finalize([V.decide(claim, "default", "smoke", store)])
    assert v["status"] == "REPRODUCED", v["reason"]
    paths[("small", 0)].unlink()
    [v] = V.finalize([V.decide(claim, "default", "smoke", store)])
    assert v["status"] == "NOT RUN" and v["reason"] == "dataset 'synthetic' not found"


def test_a_reused_run_in_a_paired_check_is_tested_conditionally_on_it_and_alone_is_undecided(tmp_path, stored):
    """Issue 14: one fixed_seed run reused for every seed of a paired check came out REPRODUCED at p = 0. Against
    an arm that varies it is a constant: the paired differences carry that arm's spread (a one-sample t on the
    other arm, valid given that one run), and the reason says so. Two reused runs leave nothing to test."""
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "teacher"]})
    stored["toy"] = {"distilled": [run(60.0, key="d0"), run(61.5, key="d1"), run(59.0, key="d2")],
                     "teacher": [run(67.0, key="same")] * 3}
    [v] = verdicts_for([claim])
    assert v["status"] == "REPRODUCED" and 0 < v["p"] < 0.05, v["reason"]
    assert v["conditional_on"] == ["teacher"] and "conditional on the one run of teacher" in v["reason"]
    stored["toy"]["distilled"] = [run(60.0, key="d")] * 3
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and "too few distinct runs: arm 'distilled' has 1 distinct run" in v["reason"]


def test_holm_family_is_named_refutations_corrected_and_seeds_at_the_holm_level(tmp_path, stored):
    """The family is the claims being decided, named in every verdict; a refutation needs Holm too; and
    seeds_to_decide is computed at the threshold the claim faces in the family, not at raw alpha."""
    claims = []
    for name, small in [("c-a", [146.0, 141, 151]), ("c-b", [146.0, 141, 151]), ("c-weak", [83.0, 80, 87])]:
        claims.append(make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, name=name))
        stored[name] = results(distilled=GOOD["distilled"], small=small)
    refuting = make_claim(tmp_path, {"kind": "less", "arms": ["small", "distilled"]}, name="c-ref")
    stored["c-ref"] = results(distilled=[80.0, 76, 85], small=[83.0, 83, 91])
    out = {v["claim"]: v for v in verdicts_for(claims + [refuting])}
    family = ["c-a[default]", "c-b[default]", "c-weak[default]", "c-ref[default]"]
    assert all(v["holm_family"] == family for v in out.values())
    ref = out["c-ref"]
    assert ref["decision"] == "refuted" and ref["p_refute"] < 0.05 <= ref["p_refute_holm"]
    assert ref["status"] == "INCONCLUSIVE" and "ruled out at alpha alone, but not after Holm" in ref["reason"]
    weak = out["c-weak"]
    assert weak["status"] == "INCONCLUSIVE"
    from repro.stats import less
    raw = less(V.metric_values(stored["c-weak"], claims[2].check), claims[2].check)
    assert weak["seeds_to_decide"] > raw["seeds_to_decide"]  # its Holm level is below alpha


@pytest.mark.parametrize("check,comparable,status", [
    ({"kind": "matches", "arms": ["teacher"], "value": 146, "tolerance": 20}, None, "NOT REPRODUCED"),
    ({"kind": "matches", "arms": ["teacher"], "value": 146, "tolerance": 20}, False, "INCONCLUSIVE"),
    ({"kind": "matches", "arms": ["teacher"], "value": 67, "tolerance": 20}, False, "REPRODUCED"),
    ({"kind": "at_least", "arms": ["small"], "bound": 200}, False, "NOT REPRODUCED"),  # a bound the spec chose
    ({"kind": "less", "arms": ["small", "distilled"]}, False, "NOT REPRODUCED"),  # relative: keeps its verdict
])
def test_a_check_against_the_source_number_is_never_refuted_where_the_scale_is_not_comparable(
        tmp_path, stored, check, comparable, status):
    claim = make_claim(tmp_path, check)
    if comparable is not None:  # the profile states it
        doc = yaml.safe_load((tmp_path / "toy.yaml").read_text())
        doc["profiles"]["smoke"]["comparable"] = {"numbers": comparable, "why": "20 of 1000 epochs"}
        (tmp_path / "toy.yaml").write_text(yaml.safe_dump(doc))
        claim = load_claim(tmp_path / "toy.yaml")
    stored["toy"] = results(**GOOD)
    [v] = verdicts_for([claim])
    assert v["status"] == status, v["reason"]
    if status == "INCONCLUSIVE":
        assert v["not_comparable"] == "20 of 1000 epochs"
        assert "not comparable with the source at the smoke profile (20 of 1000 epochs): measured" in v["reason"]
        assert "against the source's " in v["reason"]


# --- issue 25 items 6 and 8 --------------------------------------------------------------------------

def test_a_verdict_resting_on_one_reused_teacher_says_so_and_so_does_its_precondition(tmp_path, stored):
    """Old code: the note appeared only when the reused run was itself a check arm; students that all learn from
    one fixed_seed teacher, and a precondition comparing that teacher, were reported unconditionally."""
    arms = {"teacher": {"fixed_seed": 0}, "small": {},
            "distilled": {"teacher": "teacher", "loss": {"name": "kd_batchmean", "alpha": 0.5, "T": 4}}}
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]}, [PRE], arms=arms)
    stored["toy"] = {**results(small=GOOD["small"], distilled=GOOD["distilled"]),
                     "teacher": [run(67.0, key="t0")] * 3}
    [v] = verdicts_for([claim])
    assert v["status"] == "REPRODUCED" and v["conditional_on"] == ["teacher"]
    assert "conditional on the one run of teacher (reused for every seed, compared or learnt from" in v["reason"]
    assert v["preconditions"][0]["held"] and v["preconditions"][0]["conditional_on"] == ["teacher"]
    stored["toy"]["teacher"] = [run(160.0, key="t0")] * 3  # the teacher is now worse: the precondition fails
    [v] = verdicts_for([claim])
    assert v["status"] == "INCONCLUSIVE" and "precondition failed" in v["reason"]
    assert "conditional on the one run of teacher" in v["reason"]


def test_a_refutation_through_one_pair_reaches_not_reproduced_beside_a_pair_without_spread(tmp_path, stored):
    claim = make_claim(tmp_path, {"kind": "equivalent", "arms": ["teacher", "small", "distilled"], "margin": 1.0})
    stored["toy"] = results(teacher=[10.0, 12, 9], small=[10.0, 12, 9], distilled=[40.0, 44, 41])
    [v] = verdicts_for([claim])
    assert v["status"] == "NOT REPRODUCED", v["reason"]
    assert v["holm_family"] == ["toy[default]"] and v["p_refute_holm"] < 0.05
    assert "no test is valid" not in v["reason"]


def test_a_sequential_verdict_prints_its_repeated_confidence_interval():
    """Old code printed the fixed-n (1 - 2 alpha) interval after the looks, which excluded 0 for claims that had
    crossed no boundary; the interval is now the last look's at the level of its boundary (dual to it)."""
    from repro.spec import Check
    from repro.stats import less
    chk = Check(kind="less", metric="m", arms=["a", "b"], alpha=0.05, justification="t")
    values = {"a": [80.0, 83.5, 79.2, 84.1, 80.3], "b": [81.4, 83.5, 80.9, 85.2, 80.6]}
    design = V.Design.of(3, 7, 2, 0.05)
    out = V.sequential_outcome(values, chk, design)
    fixed = less(values, chk)
    boundary = out["looks"][-1]["boundary"]
    assert out["ci_level"] == pytest.approx(1 - 2 * boundary)
    assert out["estimate_ci"][1] > fixed["estimate_ci"][1] and out["estimate_ci"][0] < fixed["estimate_ci"][0]
    assert (out["estimate_ci"][1] < 0) == (out["looks"][-1]["p"] < boundary)  # crossed iff it excludes 0
    assert fixed["estimate_ci"][1] < 0 and out["decision"] == "undecided"  # the old interval said otherwise
