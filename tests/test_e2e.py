"""run -> pytest -m claims -> report, at the smoke profile on synthetic data, through the real CLI."""
from __future__ import annotations

import json
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
