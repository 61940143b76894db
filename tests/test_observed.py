"""Observed arms (repro/spec/observed.py): values measured elsewhere, judged by the same checks as trained runs,
from `repro judge`, `repro.judge(...)` and pytest -m claims alike."""
from __future__ import annotations

import json
import math

import pytest
import scipy.stats
import yaml

import repro
from repro.cli import main
from repro.plan import needed_arms, plan_claim
from repro.spec import SpecError, load_claim

MDISTILLER = [76.20, 75.80, 75.89, 75.85, 76.15]
EXAMPLE = "examples/claims/mdistiller-7-seed-variance.yaml"


def observed(values=MDISTILLER, **extra) -> dict:
    return {"observed": {"metric": "top1", "units": "% top-1", "provenance": "five runs reported elsewhere",
                         **({"values": values} if values is not None else {}), **extra}}


def spec(arms: dict, check: dict | None = None, **top) -> dict:
    return {"id": "obs", "source": {"file": "f", "quote": "q"}, "statement": "s", "arms": arms,
            "check": check or {"kind": "matches", "metric": "top1", "arms": ["rerun"], "value": 76.32,
                               "tolerance": 0.3, "alpha": 0.05, "justification": "j"}, **top}


def write(tmp_path, doc, name="obs"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_mdistiller_question_tost_p_066_where_a_plain_t_test_gives_0014():
    v, = repro.judge(EXAMPLE)
    assert v["status"] == "INCONCLUSIVE" and v["check"] == "matches"
    assert v["p"] == pytest.approx(0.656, abs=0.001)           # TOST against +-0.3 (skew-hedged): not shown to match
    assert v["values"] == {"rerun": MDISTILLER}
    assert scipy.stats.ttest_1samp(MDISTILLER, 76.32).pvalue == pytest.approx(0.014, abs=0.0005)  # "differs"
    assert v["observed"]["rerun"]["n"] == 5 and "mdistiller issue #7" in v["observed"]["rerun"]["provenance"]
    assert "external evidence (values measured elsewhere, not trained here)" in v["reason"]
    assert v["run_keys"] == {"rerun": []} and v["devices"] == [] and v["seeds"] == []


def test_repro_judge_decides_a_spec_file_from_its_values_alone(capsys):
    assert main(["judge", EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert out.startswith("INCONCLUSIVE   mdistiller-7-seed-variance [default] (a spec outside claims/, not "
                          "registered: Holm across these files only): mean(rerun) on top1 = 75.98")
    assert "TOST one-sample t p = 0.656" in out and len(out.splitlines()) == 1


def test_inline_csv_and_json_values_give_the_same_verdict(tmp_path):
    (tmp_path / "runs.csv").write_text("seed,acc\n" + "".join(f"{i},{x}\n" for i, x in enumerate(MDISTILLER)))
    (tmp_path / "runs.json").write_text(json.dumps([{"top1": x} for x in MDISTILLER]))
    ps = []
    for arm in (observed(), observed(None, file="runs.csv", column="acc"), observed(None, file="runs.json")):
        v, = repro.judge(spec({"rerun": arm}), folder=tmp_path)
        ps.append(v["p"])
    assert ps == [ps[0]] * 3 and not math.isnan(ps[0])


def test_a_notebook_judges_a_spec_written_as_a_dict_without_profiles_or_files():
    v, = repro.judge(spec({"rerun": observed([76.3, 76.31, 76.33, 76.29, 76.35, 76.32])}))
    assert v["status"] == "REPRODUCED"


@pytest.mark.parametrize("arm,check,expected", [
    (observed(file="runs.csv"), None, "arms.rerun.observed: observed: give the values inline"),
    (observed(None, file="nope.csv"), None, "arms.rerun.observed.file: nope.csv: no such file beside the spec"),
    (observed(None, file="bad.csv"), None, "arms.rerun.observed.file: bad.csv: row 3, column 'top1': expected a "
                                           "number, got 'n/a'"),
    (observed(None, file="bad.csv", column="acc"), None, "bad.csv: no column 'acc' (found top1); name it with `column:`"),
    (observed(None, file="../up.csv"), None, "expected a file inside the spec's folder"),
    (observed([1.0, "x"]), None, "arms.rerun.observed.values: expected finite numbers, found 'x'"),
    ({**observed(), "epochs": 3}, None, "arms.rerun: an observed arm is not trained, so it takes only `observed:`"),
    (observed(), {"kind": "matches", "metric": "top5", "arms": ["rerun"], "value": 1.0, "tolerance": 0.3,
                  "alpha": 0.05, "justification": "j"}, "check.metric: 'top5', but arm 'rerun' is observed as 'top1'"),
])
def test_bad_observed_arms_are_one_line_each(tmp_path, arm, check, expected):
    (tmp_path / "bad.csv").write_text("top1\n76.2\nn/a\n")
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path, spec({"rerun": arm}, check)))
    assert any(expected in line for line in err.value.lines), err.value.lines


TRAINED = {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]}, "optimizer": {"name": "sgd", "lr": 0.1},
           "epochs": 1, "batch_size": 8}


def mixed(tmp_path, **check):
    doc = spec({"theirs": {"observed": {"metric": "test_errors", "units": "test errors of 10000", "provenance": "p",
                                        "values": [130.0, 128, 135]}}, "ours": {}},
               {"kind": "less", "metric": "test_errors", "arms": ["ours", "theirs"], "alpha": 0.05,
                "justification": "j", **check},
               defaults=TRAINED, profiles={"smoke": {"seeds": [0, 1, 2], "scale": "toy"}})
    return load_claim(write(tmp_path, doc))


def test_an_observed_arm_mixes_with_a_trained_one_unpaired_and_only_the_trained_arm_is_planned(tmp_path):
    from test_verdict import store_all
    claim = mixed(tmp_path)
    assert needed_arms(claim, "default", "smoke") == {"ours"} and list(plan_claim(claim, "default", "smoke")) == ["ours"]
    store, _ = store_all(tmp_path, claim, {"ours": [100.0, 103, 101]})
    v, = repro.judge(claim, profile="smoke", results=store.root)
    assert v["status"] == "REPRODUCED" and v["paired"] is False and "Welch" in v["test"]
    assert v["values"] == {"ours": [100.0, 103, 101], "theirs": [130.0, 128, 135]}
    assert v["seeds"] == [0, 1, 2] and len(v["run_keys"]["ours"]) == 3 and v["run_keys"]["theirs"] == []
    with pytest.raises(SpecError, match="check.paired: observed values carry no seeds to pair by"):
        mixed(tmp_path, paired=True)


def test_a_trained_arm_cannot_learn_from_an_observed_one_and_trained_arms_need_a_profile(tmp_path):
    doc = spec({"rerun": observed(), "student": {"teacher": "rerun"}}, defaults=TRAINED,
               profiles={"p": {"seeds": [0], "scale": "s"}})
    with pytest.raises(SpecError, match="arms.student.teacher: arm 'rerun' is observed"):
        load_claim(write(tmp_path, doc))
    doc = spec({"rerun": observed(), "trained": {}}, defaults=TRAINED)
    with pytest.raises(SpecError, match="profiles: at least one profile is needed to train the arms"):
        load_claim(write(tmp_path, doc))


def test_the_report_marks_observed_arms_as_external_evidence(tmp_path):
    from repro.report import stat_rows
    v, = repro.judge(EXAMPLE)
    rows = dict(stat_rows(v))
    assert rows["external evidence: rerun"].startswith("5 values of top1 (% top-1 accuracy on the CIFAR-100 test "
                                                       "set), measured elsewhere, not trained here (from mdistiller-7")


# Hostile files of observed values: each is one line naming the file and what is wrong, never a traceback, a hang
# or a wrong verdict (issue 36). Each entry: file name, its bytes, the arm's extra keys, the expected line.
HOSTILE_FILES = [
    ("dup.csv", b"top1,top1\n1,76.2\n2,75.8\n", {}, "dup.csv: the header names column 'top1' 2 times"),
    ("semi.csv", b"seed;top1\n0;76.2\n1;75.8\n", {}, "semi.csv: the header has one column 'seed;top1': values "
                                                       "separated by ;?"),
    ("tabs.csv", b"seed\ttop1\n0\t76.2\n", {}, "values separated by tab?"),
    ("ragged.csv", b"seed,top1\n0,76.2\n1,75.8,9\n", {}, "ragged.csv: row 3 has 3 fields, the header 2"),
    ("short.csv", b"seed,top1\n0,76.2\n1\n", {}, "short.csv: row 3 has 1 fields, the header 2"),
    ("header.csv", b"top1\n", {}, "header.csv: a header row but no values"),
    ("empty.csv", b"", {}, "empty.csv: empty; expected a header row"),
    ("huge.csv", b"top1\n1e308\n1.1e308\n", {}, "huge.csv: row 2, column 'top1': 1e+308 is beyond +-1e+100"),
    ("nan.csv", b"top1\nnan\n", {}, "expected a finite number"),
    ("nul.csv", b"top1\n7\x006\n", {}, "nul.csv: not a text file (it contains NUL bytes)"),
    ("latin.csv", b"top1\n76,2\xe9\n", {}, "latin.csv: not readable as UTF-8 text"),
    ("strings.json", b'["76.2", "75.8"]', {}, "strings.json: entry 0: expected a number, got '76.2' (a JSON string"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, {}, "deep.json: nested more than 16 levels deep"),
    ("dupkey.json", b'{"top1": [1], "top1": [2]}', {}, "dupkey.json: duplicate key 'top1' in one object"),
    ("bool.json", b"[true, 1.0]", {}, "bool.json: entry 0: expected a number, got a boolean (true)"),
    ("obj.json", b'{"other": [1, 2]}', {}, "obj.json: expected a list of numbers"),
    ("big.json", b"[" + b"1," * (2 << 20) + b"1]", {}, "big.json: 4194307 bytes; an observed-values file is at most 4194304 bytes"),
    ("runs.txt", b"76.2\n", {}, "runs.txt: expected a .csv or .json file"),
]


@pytest.mark.parametrize("name,content,extra,expected", HOSTILE_FILES, ids=[c[0] for c in HOSTILE_FILES])
def test_a_hostile_observed_file_is_one_line(tmp_path, name, content, extra, expected):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path, spec({"rerun": observed(None, file=name, **extra)})))
    assert len(err.value.lines) == 1 and expected in err.value.lines[0], err.value.lines
    assert err.value.lines[0].startswith(f"{tmp_path / 'obs.yaml'}: arms.rerun.observed.file: ")


def test_a_named_pipe_or_a_folder_is_refused_without_blocking(tmp_path):
    import os
    os.mkfifo(tmp_path / "pipe.csv")  # nobody writes to it: reading it would block forever
    (tmp_path / "dir.csv").mkdir()
    for name, kind in (("pipe.csv", "a named pipe"), ("dir.csv", "a folder")):
        with pytest.raises(SpecError, match=f"{name}: not readable \\({kind}, not a regular file\\)"):
            load_claim(write(tmp_path, spec({"rerun": observed(None, file=name)})))


def test_a_spreadsheets_byte_order_mark_does_not_hide_the_first_column(tmp_path):
    (tmp_path / "excel.csv").write_bytes("top1,seed\r\n".encode("utf-8-sig") + b"76.2,0\r\n75.8,1\r\n\r\n")
    claim = load_claim(write(tmp_path, spec({"rerun": observed(None, file="excel.csv")})))
    assert claim.observed["rerun", "default"][1] == [76.2, 75.8]


@pytest.mark.parametrize("field", ["provenance", "units", "metric"])
def test_blank_text_fields_are_refused(tmp_path, field):
    arm = observed()
    arm["observed"][field] = "   "
    with pytest.raises(SpecError, match=f"arms.rerun.observed.{field}: blank; expected a line of text"):
        load_claim(write(tmp_path, spec({"rerun": arm})))


def test_inline_values_beyond_any_metric_are_refused(tmp_path):
    with pytest.raises(SpecError, match=r"arms.rerun.observed.values: 1e\+308 is beyond \+-1e\+100"):
        load_claim(write(tmp_path, spec({"rerun": observed([1e308, 1.1e308])})))


def test_observed_arms_in_different_units_are_not_compared(tmp_path):
    pct = observed([76.2, 75.8, 75.9])
    frac = {"observed": {**observed([0.762, 0.758, 0.759])["observed"], "units": "fraction top-1"}}
    check = {"kind": "equivalent", "metric": "top1", "arms": ["a", "b"], "margin": 0.5, "alpha": 0.05,
             "justification": "j"}
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path, spec({"a": pct, "b": frac}, check)))
    assert err.value.lines == [f"{tmp_path / 'obs.yaml'}: check.arms: the observed arms it compares are in different "
                               "units ('a' in '% top-1', 'b' in 'fraction top-1'); convert them to one unit"]
    same = {"observed": {**frac["observed"], "units": "% Top-1.", "values": [76.1, 75.9, 76.0]}}
    assert load_claim(write(tmp_path, spec({"a": pct, "b": same}, check)))  # case, spaces, a full stop: the same
