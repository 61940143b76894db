"""Cost before it is paid (repro/cost.py): `repro run --dry-run` with estimates from stored timings or a
probe, the unconverged-run rule and its warnings, and the plan's count of distinct runs."""
from __future__ import annotations

import yaml

from repro.cli import main
from repro.cost import UNCONVERGED_DROP, unconverged
from repro.spec import load_claim


def toy(tmp_path, **profile):
    claims = tmp_path / "claims"
    claims.mkdir(exist_ok=True)
    doc = {"id": "toy", "source": {"file": "f", "quote": "q"}, "statement": "s",
           "defaults": {"data": {"name": "synthetic", "n_train": 64, "n_test": 32}, "model": {"name": "mlp", "hidden": [4]},
                        "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 3, "batch_size": 16},
           "arms": {"teacher": {"fixed_seed": 0}, "small": {}, "distilled": {"teacher": "teacher",
                                                                            "loss": {"name": "kd_batchmean", "alpha": 0.5, "T": 2}}},
           "check": {"kind": "less", "metric": "test_errors", "arms": ["distilled", "small"], "alpha": 0.05,
                     "justification": "j"},
           "profiles": {"smoke": {"seeds": [0, 1, 2], "scale": "toy", **profile}}}
    (claims / "toy.yaml").write_text(yaml.safe_dump(doc))
    return claims, load_claim(claims / "toy.yaml")


def store_some(tmp_path, claim, seconds=30.0, seeds=(0, 1)):
    from repro.plan import plan_claim
    from repro.store import Store
    store = Store(tmp_path / "out" / "results", tmp_path / "cache")
    for arm, runs in plan_claim(claim, "default", "smoke").items():
        for r in runs:
            if r.seed in seeds or arm == "teacher":
                store.save(store.path("smoke", claim.id, "default", arm, r), r,
                           {"status": "done", "epochs": [{"test_errors": 1, "train_loss": 1.0}] * 3,
                            "final": {"test_errors": 1}, "wall_s": seconds, "device": "CPU test"},
                           {"torch": "x", "python": "y", "git_commit": None})
    return store


def test_dry_run_lists_what_is_left_with_minutes_from_stored_timings_and_trains_nothing(tmp_path, capsys):
    claims, claim = toy(tmp_path)
    store_some(tmp_path, claim, seconds=120.0)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "to train   toy/default/small seed 2: ~2.0 min (from 2 stored run(s) of this arm (CPU test))" in out
    assert "toy/default/distilled seed 2: ~2.0 min" in out
    # the fixed-seed teacher is one run (stored, weights not cached: retrained for its students, listed once)
    assert out.count("toy/default/teacher seed 0 (stored, but its weights are not cached") == 1
    assert out.rstrip().endswith("dry run: 7 distinct runs, 4 stored (not listed), 3 to train, about 6.0 minutes; "
                                 "nothing was stored")
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_dry_run_probes_one_epoch_where_no_timing_is_stored(tmp_path, capsys):
    claims, _ = toy(tmp_path)
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke", "--dry-run"]) == 0
    assert "? (no stored timing of this model and data)" in capsys.readouterr().out
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke", "--dry-run",
                 "--probe"]) == 0
    out = capsys.readouterr().out
    assert "(from a one-epoch probe here x 3)" in out and "?" not in out.replace("? (", "")
    assert "7 to train" in out and "(2 one-epoch probe(s) trained and discarded)" in out
    assert not (tmp_path / "out" / "results").exists()


def test_the_plan_counts_a_fixed_seed_teacher_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    claims, _ = toy(tmp_path)
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "7 runs planned over 1 claim(s)" in out  # 1 teacher + 3 small + 3 distilled, not 9
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke"]) == 0
    assert capsys.readouterr().out.count("stored, skipped: toy/default/teacher") == 1  # its one file, said once


def test_the_unconverged_rule_is_a_last_epoch_fall_of_the_training_loss_over_5_percent():
    def result(*losses, status="done"):
        return {"status": status, "epochs": [{"train_loss": x} for x in losses]}
    assert UNCONVERGED_DROP == 0.05
    assert "still fell 10% in its last epoch (1 -> 0.9, epoch 3)" in unconverged(result(2.0, 1.0, 0.9))
    assert unconverged(result(2.0, 1.0, 0.96)) is None          # 4%: settled enough
    assert unconverged(result(1.0)) is None                     # one epoch: no trend to judge
    assert unconverged(result(2.0, 1.0, 0.5, status="diverged")) is None


def test_an_unconverged_run_is_a_warning_in_the_run_output_and_in_the_verdict(tmp_path, capsys, monkeypatch):
    import repro
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    claims, claim = toy(tmp_path)
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "looks unconverged: training loss still fell" in out  # 3 epochs at lr 0.1 on noise: still learning
    v, = repro.judge(claim, profile="smoke", results=tmp_path / "out" / "results")
    assert v["unconverged"] and "warning: runs that ended unconverged" in v["reason"]


def test_eval_every_scores_the_test_set_every_nth_epoch_and_the_last_with_the_same_final_numbers(tmp_path):
    import torch
    from test_train import smoke_run
    from repro.train import train
    every, sparse = smoke_run("small", epochs=3), smoke_run("small", epochs=3, eval_every=2)
    assert smoke_run("small", epochs=3, eval_every=1).key == every.key != sparse.key  # default: keys unchanged
    full, _ = train(every, torch.device("cpu"))
    thin, _ = train(sparse, torch.device("cpu"))
    assert ["test_errors" in e for e in thin["epochs"]] == [False, True, True]
    assert thin["final"] == full["final"]
    assert [e["train_loss"] for e in thin["epochs"]] == [e["train_loss"] for e in full["epochs"]]


def test_eval_every_is_refused_where_a_check_reads_the_test_set_every_epoch(tmp_path):
    import pytest
    from repro.spec import SpecError
    claims, _ = toy(tmp_path)
    doc = yaml.safe_load((claims / "toy.yaml").read_text())
    doc["defaults"]["eval_every"] = 2
    doc["check"]["metric"] = "first:test_acc"
    (claims / "toy.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="'first:test_acc' reduces a test key over the epochs, but eval_every: 2"):
        load_claim(claims / "toy.yaml")
    doc["check"]["metric"], doc["defaults"]["select"] = "test_errors", "best"
    (claims / "toy.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="eval_every: 2 leaves epochs unscored, but `select: best`"):
        load_claim(claims / "toy.yaml")
    doc["defaults"].pop("select")
    doc["check"]["metric"] = "mean:train_acc"  # a training key per epoch: fine
    (claims / "toy.yaml").write_text(yaml.safe_dump(doc))
    load_claim(claims / "toy.yaml")
