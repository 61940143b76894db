"""Issue 34 items 5-7: a teacher from a checkpoint, transfer sets (held-out images, no labels), and what a verdict
rests on (plugin code hashes in run keys, the report's table, Ray workers loading a claim's plugins)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from repro.models import create_model
from repro.plan import plan, plan_claim
from repro.spec import SpecError, claim_from_raw

DATA = {"name": "synthetic", "n_train": 48, "n_test": 16, "shape": [1, 6, 6], "num_classes": 3, "holdout": 16}
CPU = torch.device("cpu")


def spec(student: dict, **arms):
    return {
        "id": "transfer", "source": {"file": "x", "quote": "y"}, "statement": "z",
        "defaults": {"data": DATA, "optimizer": {"name": "sgd", "lr": 0.05}, "epochs": 2, "batch_size": 16,
                     "model": {"name": "mlp", "hidden": [8]}},
        "arms": {"teacher": {"model": {"name": "mlp", "hidden": [12]}}, "alone": {},
                 "student": {"loss": {"name": "hinton", "alpha": 0.5, "T": 2.0}, **student}, **arms},
        "check": {"kind": "less", "metric": "test_errors", "arms": ["student", "alone"], "alpha": 0.05,
                  "justification": "j"},
        "profiles": {"tiny": {"seeds": [0, 1], "scale": "tiny"}}}


def load(raw, tmp_path):
    return claim_from_raw(raw, tmp_path / "transfer.yaml")


def lines(raw, tmp_path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load(raw, tmp_path)
    return err.value.lines


# --- 5. a teacher from a checkpoint -----------------------------------------------------------------------------

def write_checkpoint(folder, name="t.pt", hidden=(12,), state=None) -> str:
    torch.manual_seed(1)
    if state is None:
        state = create_model("mlp", (1, 6, 6), 3, hidden=list(hidden)).state_dict()
    torch.save(state, folder / name)
    return hashlib.sha256((folder / name).read_bytes()).hexdigest()


def ckpt(sha, file="t.pt", hidden=(12,)):
    return {"teacher_checkpoint": {"file": file, "sha256": sha, "model": {"name": "mlp", "hidden": list(hidden)}}}


def test_a_checkpoint_teacher_loads_and_its_hash_is_in_the_students_key_only(tmp_path):
    sha = write_checkpoint(tmp_path)
    claim = load(spec(ckpt(sha)), tmp_path)
    runs = plan_claim(claim, "default", "tiny")
    assert set(runs) == {"student", "alone"}  # the file is not an arm: nothing trains it
    dumped = runs["student"][0].model_dump(mode="json", exclude_defaults=True)
    assert dumped["arm"]["teacher_checkpoint"]["sha256"] == sha and runs["student"][0].teacher is None
    plain = plan_claim(load(spec({"teacher": "teacher"}), tmp_path), "default", "tiny")["alone"][0]
    assert plain.key == runs["alone"][0].key  # an arm without the new keys keeps its key
    assert "code" not in plain.model_dump(exclude_defaults=True)
    other = write_checkpoint(tmp_path, "u.pt", (12,), {k: v + 1 for k, v in torch.load(tmp_path / "t.pt").items()})
    moved = plan_claim(load(spec(ckpt(other, "u.pt")), tmp_path), "default", "tiny")["student"][0]
    assert moved.key != runs["student"][0].key  # another checkpoint: another run


@pytest.mark.parametrize("edit, expected", [
    (lambda sha, p: ckpt("0" * 64), "hashes to"),
    (lambda sha, p: ckpt(sha, "../t.pt"), "outside the claims folder"),
    (lambda sha, p: ckpt(sha, str(p / "t.pt")), "outside the claims folder"),
    (lambda sha, p: ckpt(sha[:10]), "String should match pattern"),
    (lambda sha, p: {**ckpt(sha), "teacher": "teacher"}, "a student learns from one or the other"),
    (lambda sha, p: {**ckpt(sha), "teacher_epoch": 1}, "only the weights of its file"),
    (lambda sha, p: ckpt(sha, hidden=(0,)), "teacher_checkpoint.model"),
])
def test_checkpoint_mistakes_are_one_line_each(tmp_path, edit, expected):
    folder = tmp_path / "claims"
    folder.mkdir()
    sha = write_checkpoint(folder)
    found = lines(spec(edit(sha, folder)), folder)
    assert len(found) == 1 and expected in found[0], found


def test_a_pickle_with_code_is_refused_by_weights_only_loading(tmp_path):
    torch.save({"weights": torch.nn.Linear(2, 2)}, tmp_path / "t.pt")  # a module, not a state dict
    sha = hashlib.sha256((tmp_path / "t.pt").read_bytes()).hexdigest()
    found = lines(spec(ckpt(sha)), tmp_path)
    assert len(found) == 1 and "weights_only=True" in found[0], found


def test_wrong_keys_or_shapes_and_a_missing_file_are_one_line_before_training(tmp_path):
    from repro.preflight import claim_problems
    sha = write_checkpoint(tmp_path, hidden=(12,))
    claim = load(spec(ckpt(sha, hidden=(7,))), tmp_path)  # the file's weights are for 12 hidden units
    problems = claim_problems(claim, tmp_path / "transfer.yaml")
    assert len(problems) == 1 and "size mismatch" in problems[0] and "does not fit model 'mlp'" in problems[0]
    (tmp_path / "t.pt").unlink()
    claim = load(spec(ckpt(sha)), tmp_path)  # a folder loads before its checkpoint is made ...
    problems = claim_problems(claim, tmp_path / "transfer.yaml")
    assert len(problems) == 1 and "no such file in the claims folder" in problems[0]  # ... and validate says so
    from repro.run import LocalExecutor
    from repro.store import Store
    store = Store(tmp_path / "results", tmp_path / "cache")
    logs = []
    out = LocalExecutor(store, CPU, log=logs.append).submit(plan([claim], "tiny", store))
    assert ("transfer", "default") in out["not_runnable"] and out["counts"]["trained"] == 0, logs


def test_a_student_of_a_checkpoint_trains_with_the_frozen_file_and_records_its_test_metrics(tmp_path):
    from repro.run import LocalExecutor
    from repro.store import Store
    from repro.teachers import checkpoint_network
    sha = write_checkpoint(tmp_path)
    before = torch.load(tmp_path / "t.pt")
    claim = load(spec(ckpt(sha)), tmp_path)
    store = Store(tmp_path / "results", tmp_path / "cache")
    jobs = plan([claim], "tiny", store)
    out = LocalExecutor(store, CPU, log=lambda m: None).submit(jobs)
    assert out["counts"] == {"trained": 4, "cached": 0, "failed": 0}
    student = next(j for j in jobs if j.arm == "student")
    final = store.find(student.path, student.run.key)["final"]
    assert {"teacher_test_errors", "teacher_test_acc", "fidelity"} <= set(final)
    teacher = checkpoint_network(student.run.arm)
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in before.items())
    from repro.nets import dataset_of, predict
    logits, labels = predict(teacher, dataset_of(student.run.arm), student.run.arm, CPU)
    assert final["teacher_test_errors"] == int((logits.argmax(1) != labels).sum())


# --- 6. transfer sets -------------------------------------------------------------------------------------------

def test_train_on_holdout_trains_on_the_held_out_images_the_kept_arms_never_see(tmp_path):
    from repro.nets import dataset_of
    claim = load(spec({"teacher": "teacher", "train_on": "holdout"}), tmp_path)
    kept, held = (dataset_of(claim.resolve(a, "default", "tiny")) for a in ("teacher", "student"))
    assert len(held.train_y) == 16 and len(kept.train_y) == 32 and held.holdout_x is None
    flat = lambda x: {bytes(row.numpy()) for row in x.flatten(1)}  # noqa: E731
    assert not flat(kept.train_x) & flat(held.train_x)
    assert torch.equal(held.test_x, kept.test_x)


def test_labels_none_gives_the_loss_the_teachers_top_class_never_a_label(tmp_path, monkeypatch):
    from repro.registry import LOSSES
    from repro.train import train
    from repro.nets import dataset_of
    claim = load(spec({"teacher": "teacher", "labels": "none", "loss": {"name": "hinton", "alpha": 1.0, "T": 2.0}}),
                 tmp_path)
    run = plan_claim(claim, "default", "tiny")["student"][0]
    teacher = create_model("mlp", (1, 6, 6), 3, hidden=[12]).eval()
    seen, loss = [], LOSSES._entries["hinton"]
    monkeypatch.setitem(LOSSES._entries, "hinton", lambda s, y, t, **p: seen.append((y, t.argmax(1))) or loss(s, y, t, **p))
    result, _ = train(run, CPU, teacher)
    assert seen and all(torch.equal(y, top) for y, top in seen)
    labels = dataset_of(run.arm).train_y
    assert not all(torch.equal(y, labels[: len(y)]) for y, _ in seen)  # not the labels (the order is shuffled too)
    assert result["status"] == "done"


@pytest.mark.parametrize("student, expected", [
    ({"labels": "none", "loss": "ce"}, "needs a `teacher`"),
    ({"labels": "none", "teacher": "teacher"}, "weights the hard labels by 0.5; set alpha: 1"),
    ({"labels": "none", "teacher": "teacher", "loss": {"name": "mdistiller", "ce_weight": 0.1, "kd_weight": 1.0,
                                                        "T": 4.0}}, "set ce_weight: 0"),
    ({"labels": "none", "teacher": "teacher", "loss": "ce"}, "it cannot train without them"),
    ({"teacher": "teacher", "train_on": "holdout", "data": {**DATA, "holdout": 0}}, "set data.holdout"),
    ({"labels": "nope"}, "'used' or 'none'"),
])
def test_transfer_set_mistakes_are_one_line_each(tmp_path, student, expected):
    found = lines(spec(student), tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_label_free_losses_are_declared_for_every_built_in():
    from repro.losses import hard_weight
    from repro.plugins import from_plugin
    from repro.registry import LOSSES
    for name in [n for n in LOSSES.names() if not from_plugin(LOSSES.get(n))]:  # other tests' plugins: not built in
        weight, how = hard_weight(name, {"alpha": 1.0, "ce_weight": 0.0, "beta": 1.0, "T": 1.0, "kd_weight": 1.0,
                                         "hint_weight": 1.0})
        assert weight is not None, name


# --- 7. what a verdict rests on ---------------------------------------------------------------------------------

PLUGIN = '''
from repro.registry import MODELS, Width
from torch import nn

@MODELS.register("tiny_{n}")
def create_tiny(in_shape, num_classes, width: Width = 4):
    return nn.Sequential(nn.Flatten(), nn.Linear(36, width), nn.ReLU(), nn.Linear(width, num_classes))
'''


def test_a_plugin_arm_keys_its_files_hash_and_built_in_arms_keep_their_keys(tmp_path):
    (tmp_path / "mine.py").write_text(PLUGIN.replace("{n}", "a"))
    raw = {**spec({"teacher": "teacher"}), "plugins": ["mine.py"]}
    raw["arms"]["alone"] = {"model": {"name": "tiny_a"}}
    runs = plan_claim(load(raw, tmp_path), "default", "tiny")
    digest = hashlib.sha256((tmp_path / "mine.py").read_bytes()).hexdigest()
    assert runs["alone"][0].code == {"mine.py": digest}
    assert runs["student"][0].code == {} and runs["teacher"][0].code == {}
    plain = plan_claim(load(spec({"teacher": "teacher"}), tmp_path), "default", "tiny")
    assert runs["student"][0].key == plain["student"][0].key


def test_the_report_shows_each_arms_model_data_loss_teacher_and_hashes(tmp_path):
    from repro.report import rests_on
    sha = write_checkpoint(tmp_path)
    claim = load(spec({**ckpt(sha), "train_on": "holdout", "labels": "none",
                       "loss": {"name": "hinton", "alpha": 1.0, "T": 2.0}}), tmp_path)
    rows = {r["arm"]: r for r in rests_on({"variant": "default", "profile": "tiny"}, claim, {})}
    assert set(rows) == {"student", "alone"}
    row = rows["student"]
    assert row["model"] == "mlp hidden=[8]" and "synthetic" in row["data"] and row["loss"] == "hinton T=2.0 alpha=1.0"
    assert row["teacher"] == "checkpoint t.pt (mlp hidden=[12])" and row["hashes"] == [("t.pt", sha)]
    assert row["transfer"] == "trains on holdout, no labels" and not row["stored"]


def test_a_ray_worker_loads_the_jobs_claim_first(tmp_path, monkeypatch):
    import repro.executors as executors
    import repro.spec
    loaded = []
    monkeypatch.setattr(repro.spec, "load_claim", lambda path: loaded.append(path))
    monkeypatch.setattr(executors.LocalExecutor, "submit", lambda self, jobs: {"counts": {}, "not_runnable": {}})
    (tmp_path / "transfer.yaml").write_text("")
    claim = load(spec({"teacher": "teacher"}), tmp_path)
    from repro.store import Store
    job = plan([claim], "tiny", Store(tmp_path / "r", tmp_path / "c"))[0]
    assert job.spec == (tmp_path / "transfer.yaml").resolve()
    executors._run_on_worker(str(tmp_path / "r"), str(tmp_path / "c"), "cpu", False, ["repro"], {}, job)
    assert loaded == [job.spec]
