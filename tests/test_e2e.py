"""run -> pytest -m claims -> report, at the smoke profile on synthetic data, through the real CLI."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def repro(*args, env):
    return subprocess.run([sys.executable, "-m", "repro.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_smoke_end_to_end(tmp_path):
    env = {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
           "REPRO_PROFILE": "smoke", "REPRO_VERDICTS": str(tmp_path / "verdicts.json")}
    first = repro("run", "hinton-kd-helps", "--profile", "smoke", env=env)
    assert first.returncode == 0, first.stderr
    stored = sorted((tmp_path / "results").rglob("*.json"))
    assert len(stored) == 18  # 2 variants x 3 arms x 3 seeds; teacher and small trained once, stored per variant
    before = {p: p.read_text() for p in stored}

    second = repro("run", "hinton-kd-helps", "--profile", "smoke", env=env)
    assert "'trained': 0" in second.stdout  # everything cached
    assert {p: p.read_text() for p in stored} == before

    claims = subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                             "tests/test_claims.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert "hinton-kd-helps" in claims.stdout + claims.stderr
    doc = json.loads((tmp_path / "verdicts.json").read_text())
    statuses = {(v["claim"], v["variant"]): v["status"] for v in doc["verdicts"] if v["claim"] == "hinton-kd-helps"}
    assert set(statuses) == {("hinton-kd-helps", "as_described"), ("hinton-kd-helps", "as_written")}
    assert all(s in ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE") for s in statuses.values())
    others = [v for v in doc["verdicts"] if v["claim"] != "hinton-kd-helps"]
    assert others and all(v["status"] == "NOT RUN" and v["reason"] for v in others)  # nothing run for them

    report = repro("report", "--verdicts", str(tmp_path / "verdicts.json"), "--out", str(tmp_path / "index.html"),
                   env=env)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "index.html").read_text()
    assert "hinton-kd-helps" in html and "data:image/png;base64," in html and "not evidence" in html
    for status in statuses.values():
        assert f">{status}</span>" in html


def test_same_seed_gives_identical_results(tmp_path):
    outs = []
    for i in range(2):
        env = {**os.environ, "REPRO_RESULTS": str(tmp_path / f"r{i}"), "REPRO_CACHE": str(tmp_path / f"c{i}")}
        assert repro("run", "hinton-kd-helps", "--profile", "smoke", "--seeds", "1", env=env).returncode == 0
        outs.append({p.relative_to(tmp_path / f"r{i}"): json.loads(p.read_text())["epochs"]
                     for p in (tmp_path / f"r{i}").rglob("*.json")})
    assert outs[0] == outs[1]


def test_one_claim_of_each_source_runs_at_smoke(tmp_path):
    """mnist-course, hymenoptera (from_scratch; the ImageNet variants stop as NOT RUN), vit-cifar, through the CLI."""
    env = {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    claims = ["course-student-beats-teacher", "hym-ce-stabler", "vit-learns-faster"]
    out = repro("run", *claims, "--profile", "smoke", env=env)
    assert out.returncode == 0, out.stderr
    for claim in claims:
        assert list((tmp_path / "results" / "smoke" / claim).rglob("*.json")), claim
    assert "NOT RUN hym-ce-stabler [as_written]: ImageNet weights for resnet50" in out.stdout
    assert list((tmp_path / "results" / "smoke" / "hym-ce-stabler" / "from_scratch").rglob("*.json"))


def test_a_corrupt_result_is_reported_and_re_run(tmp_path):
    env = {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    assert repro("run", "hinton-teacher", "--profile", "smoke", env=env).returncode == 0
    victim = sorted((tmp_path / "results").rglob("*.json"))[0]
    good = json.loads(victim.read_text())
    victim.write_text(victim.read_text()[:100])  # truncated
    out = repro("run", "hinton-teacher", "--profile", "smoke", env=env)
    assert f"{victim}: not readable as JSON" in out.stdout and "re-running it" in out.stdout
    assert json.loads(victim.read_text())["epochs"] == good["epochs"]  # same seed, same numbers


MY_CLAIM = """
id: {id}
source: {{file: my-paper.pdf, quote: "a quote"}}
statement: a claim of one's own
defaults:
  data: {{name: synthetic, n_train: 256, n_test: 128, noise: 2.5}}
  batch_size: 64
  optimizer: {{name: sgd, lr: 0.05}}
  epochs: 2
arms:
  teacher: {{model: {{name: mlp, hidden: [32]}}}}
  student: {{model: {{name: mlp, hidden: [8]}}, teacher: teacher, loss: {{name: kd_batchmean, alpha: 0.5, T: 4}}}}
check: {{kind: {kind}, metric: {metric}, arms: [{arms}], alpha: 0.05, bound: 0.99, justification: test}}
profiles:
  tiny: {{seeds: [0, 1, 2], scale: "tiny", deviations: []}}
"""


def test_a_claims_folder_of_ones_own_runs_judges_and_reports_apart_from_the_shipped_one(tmp_path):
    claims, out = tmp_path / "claims", tmp_path / "out"
    claims.mkdir()
    (claims / "mine-fidelity.yaml").write_text(MY_CLAIM.format(id="mine-fidelity", kind="at_most", metric="fidelity",
                                                               arms="student"))
    (claims / "mine-acc.yaml").write_text(MY_CLAIM.format(id="mine-acc", kind="at_least", metric="test_acc",
                                                          arms="teacher"))
    env = {k: v for k, v in os.environ.items() if k not in ("REPRO_RESULTS", "REPRO_VERDICTS", "REPRO_OUT")}
    env.update(REPRO_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    shipped = {p: p.read_bytes() for p in Path(ROOT / "reports").glob("*") if p.is_file()}

    refused = repro("run", "--claims", str(claims), "--profile", "tiny", env=env)
    assert refused.returncode == 2 and "pass --out DIR" in refused.stderr
    lacking = repro("run", "--claims", str(claims), "--out", str(out), "--profile", "quick", env=env)
    assert lacking.returncode == 2 and "mine-acc has no 'quick' profile (it has tiny)" in lacking.stderr

    first = repro("run", "--claims", str(claims), "--out", str(out), "--profile", "tiny", env=env)
    assert first.returncode == 0, first.stderr
    assert "mine-fidelity/default/student seed 0 epoch 1/2: train_loss" in first.stdout  # progress without a TTY
    assert "mine-fidelity/default/student seed 0: done, fidelity 0." in first.stdout  # the claim's metric
    assert "mine-acc/default/teacher seed 0: done, test_acc" in first.stdout or "stored for another claim" in first.stdout
    assert len(list((out / "results" / "tiny").rglob("*.json"))) == 9
    second = repro("run", "--claims", str(claims), "--out", str(out), "--profile", "tiny", env=env)
    assert second.stdout.count("stored, skipped: ") == 9 and "'trained': 0" in second.stdout

    env.update(REPRO_CLAIMS=str(claims), REPRO_OUT=str(out), REPRO_PROFILE="tiny")
    judged = subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                             "tests/test_claims.py", "-k", "fidelity"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    text = judged.stdout
    assert text.count("mine-fidelity [default]: ") == 1 and "mine-acc" not in text, text  # -k: only the selected
    assert re.search(r"^verdicts: 1 (REPRODUCED|NOT REPRODUCED|INCONCLUSIVE)$", text, re.M), text
    assert " passed" not in text.splitlines()[-1], text  # the last line counts verdicts, not tests
    doc = json.loads((out / "reports" / "verdicts.json").read_text())
    # -k selects what is printed; every claim of the folder is decided and written, in the folder's Holm family
    assert sorted(v["claim"] for v in doc["verdicts"]) == ["mine-acc", "mine-fidelity"]
    assert "Holm family: " in text and "every claim of " in text and doc["families"]["tiny"]["text"].startswith("Holm family")

    report = repro("report", "--claims", str(claims), "--out", str(out), env=env)
    assert report.returncode == 0, report.stderr
    html = (out / "reports" / "index.html").read_text()
    assert "mine-fidelity" in html and "hinton" not in html and "Smoke profile: not evidence" not in html
    assert {p: p.read_bytes() for p in Path(ROOT / "reports").glob("*") if p.is_file()} == shipped


def test_judging_one_profile_keeps_the_other_profiles_verdicts(tmp_path):
    """One verdicts file for every profile judged: the report shows a claim's paper verdict beside its quick one."""
    env = {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
           "REPRO_PROFILE": "smoke", "REPRO_VERDICTS": str(tmp_path / "verdicts.json")}
    paper = {"claim": "hinton-teacher", "variant": "as_described", "profile": "paper", "status": "REPRODUCED",
             "reason": "judged before"}
    (tmp_path / "verdicts.json").write_text(json.dumps({"profile": "paper", "verdicts": [paper],
                                                        "judged": {"paper": "2026-12-01T00:00:00+00:00"}}))
    for _ in range(2):  # judged twice: its own verdicts replaced, never duplicated
        subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                        "tests/test_claims.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    doc = json.loads((tmp_path / "verdicts.json").read_text())
    assert [v for v in doc["verdicts"] if v["profile"] == "paper"] == [paper]
    smoke = [(v["claim"], v["variant"]) for v in doc["verdicts"] if v["profile"] == "smoke"]
    assert smoke and len(smoke) == len(set(smoke))
    assert set(doc["judged"]) == {"paper", "smoke"} and doc["judged"]["paper"] == "2026-12-01T00:00:00+00:00"
