"""Executing plans: concurrent runs on one store, interrupts, and runs shared between claims."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def env_for(tmp_path):
    return {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
            "OMP_NUM_THREADS": "1"}


def repro_process(env, *args):
    return subprocess.Popen([sys.executable, "-m", "repro.cli", "run", "--profile", "smoke", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_on_one_store_train_each_run_once(tmp_path):
    env = env_for(tmp_path)
    procs = [repro_process(env, "hinton-kd-helps") for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trained = sum(out.count(": done, test_errors") for out, _ in outputs)
    files = list((tmp_path / "results").rglob("*.json"))
    keys = {json.loads(f.read_text())["key"] for f in files}
    assert trained == len(keys) == 12  # 3 teacher + 3 small + 3 x 2 distilled variants, each once
    assert len(files) == 18 and not list((tmp_path / "results").rglob("*.tmp"))


def test_sigterm_stops_cleanly_and_the_next_run_resumes(tmp_path):
    env = env_for(tmp_path)
    proc = repro_process(env, "hinton-kd-helps")
    results = tmp_path / "results"
    deadline = time.time() + 300
    while len(list(results.rglob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err
    kept = {p: p.read_text() for p in results.rglob("*.json")}
    assert kept

    again = repro_process(env, "hinton-kd-helps")
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0
    assert all(p.read_text() == text for p, text in kept.items())  # finished runs untouched
    assert len(list(results.rglob("*.json"))) == 18
