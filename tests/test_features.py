"""Hidden features (repro/features.py): hooks that leave the model's output alone, one-line errors for bad
module paths, a loss's own modules trained with the student and resumed exactly."""
from __future__ import annotations

import pytest
import torch

from repro.features import Features, KDInputs, Taps, probe_shapes
from repro.models import create_model
from repro.spec import Arm, RunSpec, SpecError, claim_from_raw
from repro.train import train

CPU = torch.device("cpu")
DATA = {"name": "synthetic", "n_train": 48, "n_test": 16, "shape": [3, 8, 8], "num_classes": 4}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cnn(width=4, seed=0):
    torch.manual_seed(seed)
    return create_model("small_cnn", (3, 8, 8), 4, width=width)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_taps_capture_named_outputs_in_train_and_eval_mode_and_leave_the_output_alone(mode):
    model = cnn()
    model.train(mode == "train")
    x = torch.randn(5, 3, 8, 8)
    with torch.random.fork_rng():
        before = model(x)
    taps = Taps(model, ["5", "13"])
    with torch.random.fork_rng(), taps.capturing():
        after = model(x)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    feats = taps.take()
    assert [tuple(f.shape) for f in feats] == [(5, 4, 8, 8), (5, 8, 2, 2)]
    torch.testing.assert_close(feats[0], model[:6](x))
    model(x)  # outside capturing(): nothing kept
    with pytest.raises(RuntimeError, match="did not run"):
        taps.take()
    taps.remove()
    assert not any(m._forward_hooks for m in model.modules())


def test_an_unknown_module_path_is_one_line_listing_the_models_paths():
    with pytest.raises(ValueError) as err:
        Taps(cnn(), ["layer3", "5"], "student", "small_cnn")
    line = str(err.value)
    assert "\n" not in line and "'layer3'" in line and "0, 1, 2, 3" in line and "19" in line


def test_probe_shapes_keeps_the_rng_and_the_mode():
    model = cnn()
    taps = Taps(model, ["2", "18"])
    state = torch.get_rng_state()
    assert probe_shapes(model, taps, (3, 8, 8), CPU) == [(4, 8, 8), (16,)]
    assert torch.equal(torch.get_rng_state(), state) and model.training


def spec(student_features=("5",), teacher_features=("5",), loss=None, **student):
    loss = loss or {"name": "fitnets", "hint_weight": 1.0}
    return {
        "id": "features", "source": {"file": "x", "quote": "y"}, "statement": "z",
        "defaults": {"data": DATA, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "epochs": 1,
                     "batch_size": 16},
        "arms": {"teacher": {"model": {"name": "small_cnn", "width": 8}},
                 "student": {"model": {"name": "small_cnn", "width": 4}, "teacher": "teacher", "loss": loss,
                             "features": {"student": list(student_features), "teacher": list(teacher_features)},
                             **student}},
        "check": {"kind": "less", "metric": "test_errors", "arms": ["student", "teacher"], "alpha": 0.05,
                  "justification": "j"},
        "profiles": {"tiny": {"seeds": [0], "scale": "tiny"}}}


def load(raw, tmp_path):
    return claim_from_raw(raw, tmp_path / "features.yaml")


def test_a_feature_claim_loads(tmp_path):
    claim = load(spec(), tmp_path)
    assert claim.resolve("student", "default", "tiny").features == Features(student=["5"], teacher=["5"])


@pytest.mark.parametrize("raw, expected", [
    (spec(student_features=["7", "nope"], teacher_features=["5", "6"]), "features.student: model 'small_cnn' has no module 'nope'"),
    (spec(teacher_features=["fc"]), "features.teacher: model 'small_cnn' has no module 'fc'"),
    (spec(teacher_features=["5", "6"]), "paired by position"),
    (spec(loss={"name": "hinton", "alpha": 0.5, "T": 4}), "loss 'hinton' reads no hidden features"),
    (spec(compile=True), "compile"),
    (spec(cache_teacher_logits=True), "cache_teacher_logits"),
    (spec(loss={"name": "fitnets", "hint_weight": 1.0, "head": 3}), "takes no parameter ['head']"),
])
def test_feature_mistakes_are_one_line_each_at_spec_load(raw, expected, tmp_path):
    with pytest.raises(SpecError) as err:
        load(raw, tmp_path)
    assert len(err.value.lines) == 1 and expected in err.value.lines[0], err.value.lines


def test_a_feature_loss_without_features_is_refused(tmp_path):
    raw = spec()
    del raw["arms"]["student"]["features"]
    with pytest.raises(SpecError, match="reads hidden features"):
        load(raw, tmp_path)


def runs(tmp_path, raw=None, epochs=2):
    claim = load(raw or spec(), tmp_path)
    teacher_arm = claim.resolve("teacher", "default", "tiny")
    student_arm = claim.resolve("student", "default", "tiny").model_copy(update={"epochs": epochs})
    teacher_run = RunSpec(arm=teacher_arm, seed=0)
    return RunSpec(arm=student_arm, seed=0, teacher=teacher_run), teacher_run


def without_time(result):
    return {k: v for k, v in result.items() if k != "wall_s"}


@pytest.mark.parametrize("loss, student_features, teacher_features", [
    ({"name": "fitnets", "hint_weight": 1.0}, ["5"], ["5"]),            # 4x8x8 -> 8x8x8: a 1x1 conv regressor
    ({"name": "fitnets", "hint_weight": 1.0, "activation": "none"}, ["5"], ["12"]),  # 4x8x8 -> 16x4x4: 5x5 conv
    ({"name": "attention_transfer", "beta": 1000.0}, ["6", "13"], ["6", "13"]),
])
def test_a_feature_run_trains_its_head_leaves_the_teacher_alone_and_resumes_exactly(
        loss, student_features, teacher_features, tmp_path):
    student_run, _ = runs(tmp_path, spec(student_features, teacher_features, loss), epochs=3)
    teacher = cnn(width=8, seed=1)
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    reference, model = train(student_run, CPU, teacher)
    assert reference["status"] == "done" and reference["epochs"][-1]["train_soft"] > 0
    assert all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())
    assert not any(m._forward_hooks for m in list(model.modules()) + list(teacher.modules()))

    class Killed(Exception):
        pass

    def kill(metrics):
        if metrics["epoch"] == 2:  # after epoch 1's state was saved
            raise Killed

    state = tmp_path / "state.pt"
    with pytest.raises(Killed):
        train(student_run, CPU, teacher, on_epoch=kill, resume_path=state)
    saved = torch.load(state, weights_only=True)
    assert ("head" in saved) == (loss["name"] == "fitnets")
    resumed, _ = train(student_run, CPU, teacher, resume_path=state)
    assert without_time(resumed) == without_time(reference)


def test_the_regressor_is_trained_by_the_arms_optimiser():
    student, teacher = cnn(4, 0), cnn(8, 1)
    kd = KDInputs("fitnets", {"hint_weight": 1.0}, Features(student=["5"], teacher=["12"]), student, teacher,
                  (3, 8, 8), CPU)
    assert kd.head[0].map.kernel_size == (5, 5) and kd.head[0].map.out_channels == 16
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    kd.add_to(optimizer)
    before = kd.head[0].map.weight.detach().clone()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    with kd.capturing():
        logits = student(x)
        with torch.no_grad():
            teacher_logits = teacher(x)
    from repro.registry import LOSSES
    LOSSES.get("fitnets")(logits, y, teacher_logits, hint_weight=1.0, **kd.inputs(0))["loss"].backward()
    optimizer.step()
    assert not torch.equal(before, kd.head[0].map.weight)
    assert all(p.grad is None for p in teacher.parameters())


def test_a_damaged_head_in_a_resume_file_retrains_from_epoch_1(tmp_path):
    student_run, _ = runs(tmp_path, epochs=1)
    teacher = cnn(width=8, seed=1)
    reference, _ = train(student_run, CPU, teacher)
    state = tmp_path / "state.pt"
    two = student_run.model_copy(update={"arm": student_run.arm.model_copy(update={"epochs": 2})})
    train(two, CPU, teacher, resume_path=state)
    saved = torch.load(state, weights_only=True)
    saved["history"] = saved["history"][:1]
    del saved["head"]
    torch.save(saved, state)
    result, _ = train(two, CPU, teacher, resume_path=state)  # no head to resume: retrained, same seed
    assert without_time(result)["epochs"][0] == reference["epochs"][0]
