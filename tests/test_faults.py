"""Stored-state faults: a damaged teacher checkpoint, resume file or done pointer is a one-line warning
naming the file, then that run is retrained with the same seed and the same numbers; no moment of a
kill loses a finished run; nothing is written outside the results root and cache."""
from __future__ import annotations

import os

import pytest
import torch

from repro.plan import Job, plan_claim
from repro.run import LocalExecutor
from repro.spec import load_claim
from repro.store import OutsideStore, Store
from repro.train import train

from conftest import made_up_result

CPU = torch.device("cpu")
CLAIM = load_claim("claims/hinton-kd-helps.yaml")
RUNS = plan_claim(CLAIM, "as_described", "smoke")
STUDENT = RUNS["distilled"][0]
TEACHER = STUDENT.teacher


def quiet_executor(tmp_path, **kw):
    return LocalExecutor(Store(tmp_path / "results", tmp_path / "cache"), CPU, log=lambda msg: None, **kw)


def without_time(result):
    return {k: v for k, v in result.items() if k != "wall_s"}


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


DAMAGES = {
    "truncated": lambda path, other: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path, other: path.write_bytes(os.urandom(3000)),
    "empty": lambda path, other: path.write_bytes(b""),
    "mismatched": lambda path, other: path.write_bytes(other.read_bytes()),  # another run's file
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_teacher_checkpoint_is_retrained_with_the_same_numbers(damage, tmp_path, capfd):
    executor = quiet_executor(tmp_path)
    first = weights(executor.trained_model(TEACHER))
    executor.trained_model(RUNS["small"][0])  # another run's weights: a file of the wrong shapes
    path = executor.store.checkpoint_path(TEACHER)
    DAMAGES[damage](path, executor.store.checkpoint_path(RUNS["small"][0]))
    capfd.readouterr()

    again = weights(executor.trained_model(TEACHER))
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: damaged weights (") \
        and err[0].endswith("); retraining the run")
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_resume_file_is_retrained_from_epoch_1_with_the_same_numbers(damage, tmp_path, capfd):
    run = RUNS["small"][0]
    clean, _ = train(run, CPU, resume_path=tmp_path / "clean.pt")
    path, other = tmp_path / "state.pt", tmp_path / "other.pt"
    train(run, CPU, resume_path=path)  # a complete resume file to damage
    train(RUNS["teacher"][0], CPU, resume_path=other)  # a wider net's resume file
    DAMAGES[damage](path, other)
    capfd.readouterr()

    result, _ = train(run, CPU, resume_path=path)
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: damaged resume file (") \
        and err[0].endswith("); retraining the run from epoch 1 (same seed, same numbers)")
    assert without_time(result) == without_time(clean)


def test_a_damaged_done_pointer_is_warned_about_and_the_result_still_found(tmp_path, capfd):
    store = Store(tmp_path / "results", tmp_path / "cache")
    path = store.path("smoke", "c", "v", "small", STUDENT)
    store.save(path, STUDENT, made_up_result(STUDENT), {})
    pointer = tmp_path / "cache" / "done" / STUDENT.key
    for content in (b"\xff\xfe\x00garbage", str(tmp_path / "elsewhere.json").encode()):
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_bytes(content)
        assert store.done(STUDENT.key)["key"] == STUDENT.key  # found by its key in the results folder
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"warning: {pointer}: not a usable pointer to a result (")


class Killed(BaseException):
    pass


def test_a_kill_between_training_and_saving_the_result_loses_no_epoch(tmp_path, monkeypatch):
    """Killed after the run's last epoch but before its result file is durable: the resume file is
    still there, so the next `repro run` stores the same result without training a step."""
    run = RUNS["small"][0]
    clean, _ = train(run, CPU)
    job = Job("smoke", CLAIM.id, "as_described", "small", run, Store(tmp_path / "results").path(
        "smoke", CLAIM.id, "as_described", "small", run))
    executor = quiet_executor(tmp_path)
    real_save = Store.save

    def killed_save(self, *args):
        raise Killed

    monkeypatch.setattr(Store, "save", killed_save)
    with pytest.raises(Killed):
        executor.submit([job])
    assert executor.store.state_path(run).exists() and not job.path.exists()

    monkeypatch.setattr(Store, "save", real_save)
    steps = []
    monkeypatch.setattr("repro.train.add_step", lambda *a: steps.append(a))
    executor.submit([job])
    assert steps == [] and not executor.store.state_path(run).exists()
    stored = executor.store.find(job.path)
    assert stored["epochs"] == clean["epochs"] and stored["final"] == clean["final"]


@pytest.mark.parametrize("names", [
    ("smoke", "c", "v", "../../../../x"), ("smoke", "c", "v", "/abs/path"), ("smoke", "c", "..", "a"),
    ("smoke", "c", ".", "a"), ("smoke", "", "v", "a"), ("..", "c", "v", "a"), ("smoke", "c/../..", "v", "a"),
    ("smoke", "c", "v", "a\\..\\b"), ("smoke", "c", "v", ".hidden"), ("smoke", "c", "v\n", "a"),
])
def test_no_name_makes_the_store_write_outside_its_root(names, tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    with pytest.raises(OutsideStore, match="is not a safe name"):
        store.path(*names, STUDENT)
    assert not (tmp_path / "results").exists()


def test_the_store_refuses_paths_that_resolve_outside_its_root(tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for outside in (tmp_path / "x.json", tmp_path / "results" / ".." / "x.json", tmp_path / "results" / "link" / "x.json",
                    tmp_path / "cache" / "x.json"):
        with pytest.raises(OutsideStore, match="refusing to write there"):
            store.save(outside, STUDENT, {"status": "done", "epochs": [], "final": {}, "wall_s": 0, "device": "cpu"}, {})
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_every_planned_result_of_every_claim_lies_inside_the_results_root(tmp_path):
    from repro.plan import plan
    from repro.spec import load_claims
    store = Store(tmp_path / "results", tmp_path / "cache")
    claims = list(load_claims("claims").values())
    for profile in ("smoke", "quick", "paper"):
        for job in plan(claims, profile, store):
            assert job.path.resolve().is_relative_to((tmp_path / "results").resolve())
