"""benchmarks/gpu_check.py (`make gpu-check`): its CPU dry run, so the GPU session's one command is known to work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_run_fills_every_section_of_its_summary(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--device", "cpu", "--summary-dir",
                           str(tmp_path / "out"), "--scratch", str(tmp_path / "scratch")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    sections = json.loads((tmp_path / "out" / "gpu-check.json").read_text())["sections"]
    assert list(sections) == ["environment", "vit_paper_epoch", "sync_free_loop", "mnist_paper_arms", "bf16", "stacked_seeds",
                              "resnet_vit_step", "paper_projection", "smoke_end_to_end"]
    assert not [name for name, s in sections.items() if "error" in s]
    assert sections["environment"]["dry_run"] is True
    assert sections["sync_free_loop"]["same_numbers"] is True  # per-step and sync-free paths agree
    vit = sections["vit_paper_epoch"]  # tiny here; on a GPU one real-size epoch
    assert vit["vit_paper_runs"] == 30 and vit["vit_paper_profile_gpu_hours"] > 0 and vit["flops_per_epoch"] > 0
    assert vit["data"].startswith("synthetic stand-in") and vit["epoch_s"] > 0 and vit["teacher_epoch_s"] > 0
    assert sections["paper_projection"]["unique_runs"] > 100 and sections["paper_projection"]["total_hours_one_gpu"] > 0
    assert sections["smoke_end_to_end"]["ok"] and sum(sections["smoke_end_to_end"]["verdicts"].values()) == 2
    assert list((tmp_path / "scratch" / "smoke" / "results").rglob("*.json"))  # into the scratch folder, not results/


def test_the_gpu_check_refuses_cuda_where_there_is_none(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--summary-dir", str(tmp_path)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "torch sees no GPU" in done.stderr and done.stderr.count("\n") == 1
