"""The command line's small contracts: a closed pipe, a folder with one bad spec, a claims folder without --out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_validate_into_a_closed_pipe_ends_quietly():
    proc = subprocess.run(f"{sys.executable} -m repro.cli validate tests/bad-specs | head -1", shell=True, cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.startswith("error tests/bad-specs/") and proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr


def test_list_shows_every_good_claim_when_one_spec_is_bad(tmp_path, capsys):
    claims = tmp_path / "claims"
    claims.mkdir()
    doc = {"id": "fine", "source": {"file": "f", "quote": "q"}, "statement": "s",
           "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                        "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
           "arms": {"a": {}, "b": {}},
           "check": {"kind": "less", "metric": "test_errors", "arms": ["a", "b"], "alpha": 0.05, "justification": "j"},
           "profiles": {"smoke": {"seeds": [0, 1], "scale": "toy"}}}
    (claims / "fine.yaml").write_text(yaml.safe_dump(doc))
    (claims / "broken.yaml").write_text(yaml.safe_dump({**doc, "id": "broken", "epochs_typo": 3}))
    assert main(["list", "--claims", str(claims), "--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("fine: less test_errors ['a', 'b']") and "results 0/4" in out
    assert "broken.yaml: epochs_typo: Extra inputs are not permitted" in err


def test_list_of_another_claims_folder_needs_its_out_like_run_and_report(tmp_path, capsys):
    import shutil
    shutil.copytree("examples/claims", tmp_path / "mine")  # examples/claims is a shipped set (it writes to examples/)
    assert main(["list", "--claims", str(tmp_path / "mine")]) == 2
    assert "not the shipped claims folder: pass --out DIR" in capsys.readouterr().err
    assert main(["list", "--claims", "examples/claims"]) == 0
    out = capsys.readouterr().out
    assert "born-again-beats-teacher" in out and "results 10/10" in out  # stored runs are counted, not 0/10
    assert "observed arms (values measured elsewhere, not trained): rerun" in out


def test_variants_train_only_the_chosen_variant(tmp_path, monkeypatch, capsys):
    """hinton-kd-helps [as_written]'s distilled net is its own run: --variants as_described plans none of it;
    a chosen claim with none of the variants is warned about (course-teacher has no as_described)."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    submitted, run = [], ["--results", str(tmp_path / "results"), "run", "--profile", "smoke"]
    monkeypatch.setattr("repro.run.LocalExecutor.submit",
                        lambda self, jobs: submitted.extend(jobs) or {"counts": {}, "not_runnable": {}})
    assert main(run + ["hinton-kd-helps", "hinton-small", "--variants", "as_described", "--arms", "distilled"]) == 0
    assert submitted and {(j.claim, j.variant) for j in submitted} == {("hinton-kd-helps", "as_described")}
    assert main(run + ["hinton-kd-helps", "course-teacher", "--variants", "as_written", "--dry-run"]) == 0
    assert "warning: course-teacher has none" not in capsys.readouterr().err
    assert main(run + ["hinton-kd-helps", "course-teacher", "--variants", "as_described", "--dry-run"]) == 0
    assert "warning: course-teacher has none of --variants (it has as_written, corrected); nothing to run for it\n" \
        in capsys.readouterr().err


def test_help_imports_no_torch():
    """`repro --help` and every command's --help answer without importing torch (or scipy): the heavy library is
    imported by a command after its arguments are parsed, and the registries fill on their first lookup."""
    commands = ["", "list", "validate", "run", "verify", "report", "judge", "reference"]
    script = ("import sys, repro.cli\n"
              f"for command in {commands!r}:\n"
              "    try:\n"
              "        repro.cli.main([command, '--help'] if command else ['--help'])\n"
              "    except SystemExit:\n"
              "        pass\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'scipy', 'torchvision'))\n"
              "assert not heavy, heavy[:5]\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: repro run" in proc.stdout


def test_the_registries_find_the_built_in_entries_without_importing_them_first():
    """`import repro` is light, yet a spec validates in a fresh process: the first lookup loads the built-ins."""
    script = ("import sys, repro\n"
              "assert 'torch' not in sys.modules\n"
              "from repro.spec import load_claim\n"
              "load_claim('claims/hinton-kd-helps.yaml')\n"
              "from repro.registry import CHECKS, DATASETS, LOSSES, MODELS\n"
              "assert 'mnist' in DATASETS and 'mlp' in MODELS and 'hinton' in LOSSES and 'greater' in CHECKS\n"
              "assert callable(repro.judge) and repro.losses.hinton\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_judge_with_an_unknown_profile_is_one_line_naming_the_known_ones(capsys):
    assert main(["judge", "hinton-kd-helps", "--profile", "nope"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: unknown profile 'nope'; the claims judged have: paper, quick, smoke\n"


def test_probe_without_dry_run_refuses_in_one_line_and_trains_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("repro.run.LocalExecutor.submit", lambda self, jobs: pytest.fail("--probe alone trained"))
    assert main(["--results", str(tmp_path / "results"), "run", "hinton-kd-helps", "--profile", "smoke", "--probe"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: --probe times epochs for --dry-run's estimates; add --dry-run (nothing was trained)\n"


def test_run_on_cuda_where_there_is_none_is_one_line(capsys, monkeypatch):
    """`repro run --device cuda` on a machine without CUDA says so before planning (as `repro verify` does)."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("repro.run.LocalExecutor.submit", lambda self, jobs: pytest.fail("trained"))
    assert main(["run", "hinton-kd-helps", "--profile", "smoke", "--device", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: --device cuda: CUDA is not available on this machine (torch ")
    assert err.rstrip().endswith("; use --device cpu") and len(err.splitlines()) == 1
