"""Several teachers per arm (repro/teachers.py): the spec syntax, one line per mistake, the averaging, a run."""
from __future__ import annotations

import pytest
import torch

from repro.teachers import Ensemble
from repro.plan import plan, plan_claim
from repro.spec import SpecError, claim_from_raw

DATA = {"name": "synthetic", "n_train": 48, "n_test": 16, "shape": [1, 6, 6], "num_classes": 3}


def spec(**student):
    return {
        "id": "ensemble", "source": {"file": "x", "quote": "y"}, "statement": "z",
        "defaults": {"data": DATA, "optimizer": {"name": "sgd", "lr": 0.05}, "epochs": 1, "batch_size": 16,
                     "model": {"name": "mlp", "hidden": [8]}},
        "arms": {"t1": {}, "t2": {"model": {"name": "mlp", "hidden": [12]}}, "t3": {"optimizer": {"lr": 0.1}},
                 "student": {"loss": {"name": "hinton", "alpha": 0.5, "T": 2.0}, **student}},
        "check": {"kind": "less", "metric": "test_errors", "arms": ["student", "t1"], "alpha": 0.05,
                  "justification": "j"},
        "profiles": {"tiny": {"seeds": [0, 1], "scale": "tiny"}}}


def load(raw, tmp_path):
    return claim_from_raw(raw, tmp_path / "ensemble.yaml")


def test_a_list_of_teachers_loads_and_plans_one_run_per_teacher_and_seed(tmp_path):
    claim = load(spec(teacher=["t1", "t2", "t3"]), tmp_path)
    arm = claim.resolve("student", "default", "tiny")
    assert arm.teacher is None and arm.teachers == {"t1": 1.0, "t2": 1.0, "t3": 1.0}
    runs = plan_claim(claim, "default", "tiny")
    assert [t.key for t in runs["student"][1].teachers] == [runs[t][1].key for t in ("t1", "t2", "t3")]


def test_a_single_teachers_run_key_is_unchanged_by_the_ensemble_fields(tmp_path):
    claim = load(spec(teacher="t1"), tmp_path)
    run = plan_claim(claim, "default", "tiny")["student"][0]
    dumped = run.model_dump(mode="json", exclude_defaults=True)
    assert "teachers" not in dumped and "teachers" not in dumped["arm"] and "teacher_aggregate" not in dumped["arm"]


@pytest.mark.parametrize("student, expected", [
    ({"teacher": ["t1", "nobody"]}, "arms.student.teacher: unknown arm 'nobody'"),
    ({"teacher": ["t1", "t1"]}, "named twice"),
    ({"teacher": ["t1", 3]}, "expected an arm name, found 3"),
    ({"teacher": ["t1"]}, "at least two arms"),
    ({"teacher": {"t1": 1.0, "t2": 0}}, "greater than 0"),
    ({"teacher": "t1", "teacher_aggregate": "probabilities"}, "applies to several teachers"),
    ({"teacher": ["t1", "t2"], "teacher_epoch": 1}, "teacher_epoch"),
    ({"teacher": [["t1"], "t2"]}, "expected an arm name"),
])
def test_teacher_list_mistakes_are_one_line_each_never_a_traceback(student, expected, tmp_path):
    with pytest.raises(SpecError) as err:
        load(spec(**student), tmp_path)
    assert len(err.value.lines) == 1 and expected in err.value.lines[0], err.value.lines


def test_the_ensemble_averages_logits_or_probabilities_at_the_losss_temperature():
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    outs = torch.stack([m(x) for m in members])
    w = torch.tensor([2.0, 1.0, 1.0]) / 4
    with torch.no_grad():
        torch.testing.assert_close(Ensemble(members, [2, 1, 1])(x), (w.view(-1, 1, 1) * outs).sum(0))
        T = 3.0
        mixed = Ensemble(members, [2, 1, 1], "probabilities", T)(x)
        torch.testing.assert_close(torch.softmax(mixed / T, -1),
                                   (w.view(-1, 1, 1) * torch.softmax(outs / T, -1)).sum(0))


def test_a_student_of_two_teachers_trains_with_each_teacher_trained_once(tmp_path):
    from repro.run import LocalExecutor
    from repro.store import Store
    claim = load(spec(teacher={"t1": 2.0, "t2": 1.0}, teacher_aggregate="probabilities"), tmp_path)
    store = Store(tmp_path / "results", tmp_path / "cache")
    logs = []
    out = LocalExecutor(store, torch.device("cpu"), log=logs.append).submit(plan([claim], "tiny", store))
    assert out["counts"] == {"trained": 6, "cached": 0, "failed": 0}, logs  # t1, t2, student x 2 seeds
    stored = store.find(plan([claim], "tiny", store)[-1].path, plan_claim(claim, "default", "tiny")["student"][1].key)
    assert "fidelity" in stored["final"]
