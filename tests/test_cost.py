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


def here() -> str:
    import torch
    from repro.train import describe_device
    return describe_device(torch.device("cpu"))


def store_some(tmp_path, claim, seconds=30.0, seeds=(0, 1), device="CPU test", profile="smoke", arms=None):
    from repro.plan import plan_claim
    from repro.store import Store
    store = Store(tmp_path / "out" / "results", tmp_path / "cache")
    for arm, runs in plan_claim(claim, "default", profile).items():
        for r in runs:
            if (r.seed in seeds or arm == "teacher") and (arms is None or arm in arms):
                store.save(store.path(profile, claim.id, "default", arm, r), r,
                           {"status": "done", "epochs": [{"test_errors": 1, "train_loss": 1.0}] * r.arm.epochs,
                            "final": {"test_errors": 1}, "wall_s": seconds, "device": device},
                           {"torch": "x", "python": "y", "git_commit": None})
    return store


def dry(tmp_path, capsys, *extra) -> str:
    claims = tmp_path / "claims"
    assert main(["run", "--claims", str(claims), "--out", str(tmp_path / "out"), "--profile", "smoke", "--dry-run",
                 *extra]) == 0
    return capsys.readouterr().out


def test_dry_run_lists_what_is_left_with_minutes_from_stored_timings_and_trains_nothing(tmp_path, capsys):
    claims, claim = toy(tmp_path)
    store_some(tmp_path, claim, seconds=120.0, device=here())
    before = sorted(p for p in tmp_path.rglob("*"))
    out = dry(tmp_path, capsys)
    assert f"to train   toy/default/small seed 2: here ~2.0 min (measured: 2 stored run(s) of this arm ({here()}))" in out
    assert "toy/default/distilled seed 2: here ~2.0 min (measured" in out
    # the fixed-seed teacher is one run (stored, weights not cached: retrained for its students, listed once)
    assert out.count("toy/default/teacher seed 0 (stored, but its weights are not cached") == 1
    assert "dry run: 7 distinct runs, 4 stored (not listed), 3 to train; nothing was stored" in out
    assert f"  here ({here()}): about 6.0 min = 6.0 min measured (3 runs) + 0 s estimated (0 runs)" in out
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_an_interrupted_run_is_costed_for_the_epochs_it_has_left(tmp_path, capsys, monkeypatch):
    """A paper run resumes from its per-epoch state next session: the dry run said its whole time (a teacher
    two-thirds done was listed at 5 hours). A damaged state file restarts the run, so it costs the whole run."""
    import torch
    from repro.plan import plan_claim
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))  # the cache store_some writes, as `repro run` reads
    _, claim = toy(tmp_path)
    store = store_some(tmp_path, claim, seconds=120.0, device=here())
    small, distilled = (plan_claim(claim, "default", "smoke")[arm][2] for arm in ("small", "distilled"))
    store.state_path(small).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"history": [{"train_loss": 1.0}] * 2}, store.state_path(small))
    store.state_path(distilled).write_bytes(b"not a torch file")
    out = dry(tmp_path, capsys)
    assert (f"to train   toy/default/small seed 2 (resumes here at epoch 3 of 3): here ~40 s (measured: 2 stored "
            f"run(s) of this arm ({here()}), x 1/3 epochs left)") in out
    assert f"toy/default/distilled seed 2: here ~2.0 min (measured: 2 stored run(s) of this arm ({here()}));" in out
    assert "about 4.7 min = 4.7 min measured (3 runs)" in out


def test_timings_of_another_machine_are_an_estimate_not_a_measurement(tmp_path, capsys):
    _, claim = toy(tmp_path)
    store_some(tmp_path, claim, seconds=120.0, device="CPU Elsewhere 9000, 4 threads")
    out = dry(tmp_path, capsys)
    assert "small seed 2: here ~2.0 min (estimated from 2 stored run(s) of this arm on another machine " \
           "(CPU Elsewhere 9000, 4 threads))" in out
    assert "about 6.0 min = 0 s measured (0 runs) + 6.0 min estimated (3 runs)" in out


def timed_on_two_machines(tmp_path):
    """The teacher and the distilled net timed elsewhere (120 s), the small net here (30 s): the teacher and the
    small net are one model and data, so the two machines' speed ratio is 0.25."""
    _, claim = toy(tmp_path)
    store_some(tmp_path, claim, seconds=120.0, device="CPU Elsewhere 9000, 4 threads", arms={"teacher", "distilled"})
    store_some(tmp_path, claim, seconds=30.0, device=here(), arms={"small"})


def test_another_machine_s_timings_are_scaled_by_the_speed_both_measured_on_an_arm_of_the_same_model(tmp_path, capsys):
    """An arm timed only elsewhere (a 1.8 h AMD EPYC student) was costed at the other machine's seconds on an Intel
    Xeon that trains the same MLPs in half the time: an arm timed on both (here the teacher there, the same model
    and data as the small net here) gives the ratio. Without one the seconds stay as they are (test above)."""
    timed_on_two_machines(tmp_path)
    out = dry(tmp_path, capsys)
    assert ("distilled seed 2: here ~30 s (estimated from 2 stored run(s) of this arm on another machine (CPU Elsewhere "
            "9000, 4 threads), x 0.25: this machine's speed against it on 1 mlp arm(s) of its widths timed on both)") in out
    assert f"small seed 2: here ~30 s (measured: 2 stored run(s) of this arm ({here()}))" in out


def test_stored_files_of_any_shape_are_skipped_by_the_costing_not_a_crash(tmp_path, capsys):
    """A dry run reads every result file raw (it does not judge): an arm that is a list, a model without a name or
    a number for a device stopped it with a traceback. Each is skipped; the honest files still cost the plan."""
    import json
    timed_on_two_machines(tmp_path)
    folder = tmp_path / "out" / "results" / "smoke" / "toy" / "default" / "small"
    honest = json.loads(next(folder.glob("seed0-*.json")).read_text())
    shapes = [{"run": {**honest["run"], "arm": arm}} for arm in ([], {}, {"model": "mlp"}, {"model": {}}, None)]
    shapes += [{"device": 3}, {"device": None, "run": {**honest["run"], "arm": {**honest["run"]["arm"], "model": [1]}}},
               {"wall_s": "slow"}, {"epochs": 3}]
    for i, shape in enumerate(shapes):
        (folder / f"seed{90 + i}-forged{i}.json").write_text(json.dumps({**honest, **shape, "key": f"forged{i}"}))
    (folder / "seed99-list.json").write_text("[1, 2]")
    out = dry(tmp_path, capsys)
    assert "distilled seed 2: here ~30 s (estimated from 2 stored run(s) of this arm on another machine" in out
    assert f"small seed 2: here ~30 s (measured: 2 stored run(s) of this arm ({here()}))" in out


def test_dry_run_probes_one_epoch_where_no_timing_is_stored(tmp_path, capsys):
    dry_out = (toy(tmp_path), dry(tmp_path, capsys))[1]
    assert "here ? (no stored timing of this model and data; no stored timing on " in dry_out
    assert "+ 7 run(s) with no estimate" in dry_out
    out = dry(tmp_path, capsys, "--probe")
    assert "here ~" in out and "(measured: a one-epoch probe here x 3 epochs)" in out and "here ?" not in out
    assert "7 to train" in out and "(2 probe(s) trained and discarded)" in out
    assert "measured (7 runs) + 0 s estimated (0 runs)" in out.split("here (")[-1].splitlines()[0]
    assert not (tmp_path / "out" / "results").exists()


def test_a_big_run_is_probed_for_a_few_steps_and_scaled_to_its_epoch(tmp_path, monkeypatch):
    """Where an epoch would be long, --probe times PROBE_STEPS steps on a stand-in of the data and scales them
    by the epoch's steps (the toy's 64 images are 4 steps of 16; a threshold of 0 makes it 'big')."""
    import torch
    from repro import cost
    from repro.plan import plan_claim
    _, claim = toy(tmp_path, all={"data": {"name": "synthetic", "n_train": 640, "n_test": 64}})
    run = plan_claim(claim, "default", "smoke")["distilled"][0]
    monkeypatch.setattr(cost, "PROBE_FULL_EPOCH_S", 0.0)
    calls = []
    real = cost.probe_epoch_s
    monkeypatch.setattr(cost, "probe_epoch_s", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    seconds, how = cost.probe(run, torch.device("cpu"), steps=2)
    assert how == "a 2-step probe here" and seconds > 0
    (_, _, steps, n_eval), _ = calls[0]
    assert (steps, n_eval) == (2, 16)  # 2 steps of 32 images of the 640, 16 test images of the 64, scaled


def test_the_flop_model_counts_three_passes_per_training_image_and_the_teachers_forwards(tmp_path):
    """An MLP 784-4-10 forward is 2 x (784 x 4 + 4 x 10) FLOPs; a run: 3 per training image an epoch, 1 per test
    image per scored epoch; a teacher's forward per training image every epoch, or once where cached, plus its
    test logits once."""
    from repro.cost import run_work
    from repro.plan import plan_claim
    _, claim = toy(tmp_path)
    runs = plan_claim(claim, "default", "smoke")
    f = 2 * (784 * 4 + 4 * 10)
    small, distilled = runs["small"][0], runs["distilled"][0]
    assert run_work(small).flops == 3 * (3 * 64 * f + 32 * f) and run_work(small).steps == 3 * 4
    assert run_work(distilled).flops == 3 * (3 * 64 * f + 64 * f + 32 * f) + 32 * f
    cached = distilled.model_copy(update={"arm": distilled.arm.model_copy(update={"cache_teacher_logits": True})})
    assert run_work(cached).flops == 3 * (3 * 64 * f + 32 * f) + 64 * f + 32 * f
    sparse = small.model_copy(update={"arm": small.arm.model_copy(update={"eval_every": 2})})
    assert run_work(sparse).flops == 3 * 3 * 64 * f + 2 * 32 * f  # epochs 2 and 3 scored


def test_an_unstored_model_is_estimated_from_its_flops_at_the_rate_of_this_machine_s_stored_runs(tmp_path, capsys):
    """Only the teacher (MLP 784-4-10, fp32) is stored here: the 800-wide students are rated at its FLOP/s, the
    line says so, and the GPU column uses the assumed rate, labelled as an assumption."""
    from repro.cost import run_work
    from repro.plan import plan_claim
    claims, claim = toy(tmp_path, arms={"small": {"model": {"name": "mlp", "hidden": [800]}},
                                        "distilled": {"model": {"name": "mlp", "hidden": [800]}}})
    store_some(tmp_path, claim, seconds=10.0, device=here(), arms={"teacher"})
    out = dry(tmp_path, capsys)
    runs = plan_claim(claim, "default", "smoke")
    rate = run_work(runs["teacher"][0]).flops / 10.0
    small = run_work(runs["small"][2]).flops / rate
    line = next(x for x in out.splitlines() if "toy/default/small seed 2" in x)
    mark = line.split("TFLOP [")[1][0]
    assert f"here ~{small / 60:.1f} min (estimated from its {run_work(runs['small'][2]).flops / 1e12:.3g} TFLOP " \
           f"[{mark}])" in line
    assert f"[{mark}] fp32 {rate / 1e9:.3g}, bf16 {2 * rate / 1e9:.3g} GFLOP/s, the rate of 1 stored mlp fp32 run(s) " \
           f"on {here()}; bf16 at 2x fp32's rate" in out
    assert "on a GPU ~" in line and "an ASSUMED rate of an NVIDIA H100: 15 TFLOP/s fp32" in out
    assert "on one GPU (an NVIDIA H100 at an assumed rate, one run at a time): about" in out
    assert "measured (1 runs)" in out  # the teacher: measured (stored, its weights not cached: retrained)


def test_a_committed_gpu_check_rates_the_gpu_column_and_stored_gpu_runs_are_measured(tmp_path, capsys, monkeypatch):
    import json
    from repro import cost
    _, claim = toy(tmp_path)
    checks = tmp_path / "benchmarks"
    checks.mkdir()
    summary = {"started": "2026-01-01", "sections": {
        "environment": {"device": "NVIDIA H100 80GB HBM3", "dry_run": False},
        "sync_free_loop": {"steps_per_epoch": 469, "sync_free": {"epoch_s": [2.0, 0.469, 0.5]}},
        "vit_paper_epoch": {"flops_per_epoch": 4e14, "epoch_s": 20.0, "precision": "fp32"}}}
    (checks / "gpu-check-h100.json").write_text(json.dumps(summary))
    (checks / "gpu-check-dry.json").write_text(json.dumps({**summary, "sections": {
        **summary["sections"], "environment": {"device": "cpu", "dry_run": True}}}))  # a dry run rates nothing
    monkeypatch.setattr(cost, "GPU_CHECKS", checks)
    out = dry(tmp_path, capsys)
    assert "] 20.0 TFLOP/s fp32, the rate of the paper ViT epoch `make gpu-check` measured on NVIDIA H100 80GB " \
           "HBM3 (gpu-check-h100.json; the other precision at 2x), plus 1 ms a step (measured)" in out
    assert "ASSUMED" not in out
    store_some(tmp_path, claim, seconds=6.0, device="NVIDIA H100 80GB HBM3")
    out = dry(tmp_path, capsys)
    assert "small seed 2: here ~6 s (estimated from 2 stored run(s) of this arm on another machine (NVIDIA H100" \
           in out and "on a GPU ~6 s (measured: 2 stored run(s) of this arm (NVIDIA H100 80GB HBM3))" in out


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


def test_a_run_stored_under_several_claims_is_one_timing(tmp_path):
    """A teacher shared by five claims is stored in five folders: the timings counted it per copy, so a dry run
    said "2 stored run(s) of this arm" for one run and weighed shared runs by their copies in its means."""
    from repro.cost import from_stored, stored_timings
    from repro.plan import plan_claim
    _, claim = toy(tmp_path)
    store = store_some(tmp_path, claim, seconds=100.0, seeds=(0,), arms=["small"])
    [first] = list(store.root.rglob("seed0-*.json"))
    copy = store.root / "smoke" / "other-claim" / "default" / "small" / first.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(first.read_bytes())
    store_some(tmp_path, claim, seconds=40.0, seeds=(1,), arms=["small"])
    timings = stored_timings(store.root)
    assert len(timings) == 2
    seed2 = plan_claim(claim, "default", "smoke")["small"][2]
    assert from_stored(seed2, timings, lambda device: True)[:2] == (70.0, "2 stored run(s) of this arm")
