"""The training loop: repeatable, resumable to the same numbers, and honest about divergence."""
from __future__ import annotations

import shutil

import pytest
import torch

from repro.plan import plan_claim
from repro.spec import Optimizer, load_claim
from repro.train import train

CPU = torch.device("cpu")


def smoke_run(arm="small", **changes):
    run = plan_claim(load_claim("claims/hinton-kd-helps.yaml"), "as_described", "smoke")[arm][0]
    return run.model_copy(update={"arm": run.arm.model_copy(update=changes)})


def without_time(result):
    return {k: v for k, v in result.items() if k != "wall_s"}


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_numbers(tmp_path):
    run = smoke_run(epochs=4, jitter_px=1)  # jitter: the augmentation RNG must be restored too
    reference, _ = train(run, CPU)

    def kill_after_epoch_2(metrics):
        if metrics["epoch"] == 2:
            raise Killed

    state = tmp_path / "state.pt"
    with pytest.raises(Killed):
        train(run, CPU, on_epoch=kill_after_epoch_2, resume_path=state)
    assert state.exists()
    resumed, _ = train(run, CPU, resume_path=state)
    assert without_time(resumed) == without_time(reference)


def test_a_nan_loss_ends_the_run_as_diverged_with_its_epoch():
    run = smoke_run(epochs=5, optimizer=Optimizer(name="sgd", lr=1e12, momentum=0.9))
    result, _ = train(run, CPU)
    assert result["status"] == "diverged"
    assert len(result["epochs"]) < 5 or result["epochs"][-1]["train_loss"] != result["epochs"][-1]["train_loss"]


def test_best_selection_reports_the_best_epoch_and_keeps_its_weights():
    run = smoke_run(epochs=3, select="best")
    result, model = train(run, CPU)
    best = max(result["epochs"], key=lambda e: e["test_acc"])
    assert result["final"]["test_acc"] == best["test_acc"]


def test_bf16_autocast_leaves_the_smoke_verdicts_of_the_mnist_claim_unchanged(tmp_path):
    """bf16 is a profile setting for speed; it must not move a verdict (checked here at smoke scale)."""
    from repro.plan import plan
    from repro.run import LocalExecutor
    from repro.store import Store
    from repro.verdict import decide_all

    claim = load_claim("claims/hinton-kd-helps.yaml")
    statuses = {}
    for precision in ("fp32", "bf16"):
        smoke = claim.profiles["smoke"]
        profile = smoke.model_copy(update={"all": {**smoke.all, "precision": precision}})
        variant = claim.model_copy(update={"profiles": {**claim.profiles, "smoke": profile}})
        store = Store(tmp_path / precision / "results", tmp_path / precision / "cache")
        LocalExecutor(store, CPU, log=lambda msg: None).submit(plan([variant], "smoke", store))
        statuses[precision] = {(v["variant"], v["status"]) for v in decide_all({claim.id: variant}, "smoke", store)}
    assert statuses["fp32"] == statuses["bf16"]


def test_cached_teacher_logits_train_like_a_teacher_forward_per_batch(tmp_path):
    from repro.run import LocalExecutor
    from repro.store import Store
    run = smoke_run("distilled", epochs=2)
    teacher = LocalExecutor(Store(tmp_path / "r", tmp_path / "c"), CPU).trained_model(run.teacher)
    per_batch, _ = train(run, CPU, teacher)
    cached, _ = train(run.model_copy(update={"arm": run.arm.model_copy(update={"cache_teacher_logits": True})}),
                      CPU, teacher)
    for a, b in zip(per_batch["epochs"], cached["epochs"]):
        assert a["train_soft"] == pytest.approx(b["train_soft"], rel=1e-4)
        assert abs(a["test_errors"] - b["test_errors"]) <= 2


def test_a_teachers_logits_are_computed_once_for_all_its_students_with_the_same_numbers(tmp_path, monkeypatch):
    import repro.teachers
    import repro.train
    from repro.run import LocalExecutor
    from repro.store import Store
    cached = smoke_run("distilled", epochs=1, cache_teacher_logits=True)
    per_batch = smoke_run("distilled", epochs=1, cache_teacher_logits=False)
    teacher = LocalExecutor(Store(tmp_path / "r", tmp_path / "c"), CPU).trained_model(cached.teacher)
    alone = [without_time(train(run, CPU, teacher)[0]) for run in (cached, per_batch)]
    splits, predict = [], repro.train.predict
    for module in (repro.train, repro.teachers):  # the students' own predictions, and their teacher's
        monkeypatch.setattr(module, "predict", lambda model, data, arm, device, split="test":
                            splits.append(split) or predict(model, data, arm, device, split))
    memo: dict = {}
    for _ in range(2):  # two students of one teacher: its train and test logits once
        shared = [without_time(train(run, CPU, teacher, teacher_memo=memo)[0]) for run in (cached, per_batch)]
        assert shared == alone
    assert splits.count("train") == 1 and len(memo) == 2  # with and without cache_teacher_logits: two entries
    assert splits.count("test") == 2 + 4  # the teacher's, per entry; each student's own, per run
    other = cached.model_copy(update={"teacher": smoke_run("distilled").teacher.model_copy(update={"seed": 7})})
    train(other, CPU, teacher, teacher_memo=memo)  # another teacher run: its own logits
    assert splits.count("train") == 2


def test_cached_teacher_logits_are_refused_where_soft_targets_change_every_epoch():
    from pydantic import ValidationError
    run = smoke_run("distilled")
    with pytest.raises(ValidationError, match="cache_teacher_logits needs a teacher in eval mode and no augmentation"):
        type(run.arm).model_validate({**run.arm.model_dump(), "cache_teacher_logits": True, "jitter_px": 2})


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_teacher_cast_once_to_bf16_gives_the_same_logits_as_autocast(mode):
    from repro.models import create_model
    from repro.nets import autocast
    from repro.teachers import cast_teacher
    teacher = create_model("mlp", (1, 28, 28), 10, hidden=[64, 64], input_dropout=0.2, hidden_dropout=0.5)
    teacher.train(mode == "train")
    cast = cast_teacher(teacher, "bf16")
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    outs = []
    for model in (teacher, cast):
        torch.manual_seed(1)  # the same dropout masks
        with torch.no_grad(), autocast("bf16", CPU):
            outs.append(model(x))
    assert torch.equal(*outs)
    assert cast_teacher(teacher, "fp32") is teacher


def test_convnets_run_channels_last_on_cuda_with_the_same_outputs():
    from repro.models import create_model
    from repro.train import device_layout
    torch.manual_seed(0)
    cnn = create_model("small_cnn", (3, 32, 32), 10, width=8).eval()
    x = torch.randn(4, 3, 32, 32)
    before = cnn(x)
    assert device_layout(cnn, CPU) is cnn and cnn[0].weight.is_contiguous()
    device_layout(cnn, torch.device("cuda"))  # only the layout changes: the weights stay where they are
    assert cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cnn(x), before, rtol=1e-5, atol=1e-5)
    mlp = create_model("mlp", (1, 28, 28), 10, hidden=[8])
    assert all(p.is_contiguous() for p in device_layout(mlp, torch.device("cuda")).parameters())


def test_vit_attention_runs_unfused_on_cpu_with_the_same_outputs_and_gradients():
    """The fused CPU attention's backward dominated a 17-token ViT step; the explicit path is the same math."""
    from repro.models import create_model
    from repro.train import device_layout
    torch.manual_seed(0)
    vit = create_model("vit_tiny", (3, 32, 32), 10, patch_size=8)
    x = torch.randn(4, 3, 32, 32)

    def outputs_and_grads():
        vit.zero_grad()
        out = vit(x)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in vit.parameters()]

    fused = outputs_and_grads()
    attentions = [m for m in vit.modules() if hasattr(m, "fused_attn")]
    assert len(attentions) == 12 and all(m.fused_attn for m in attentions)
    assert device_layout(vit, CPU) is vit and not any(m.fused_attn for m in attentions)
    explicit = outputs_and_grads()
    torch.testing.assert_close(explicit, fused, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("c++"), reason="torch.compile on CPU needs a C++ compiler")
def test_compile_is_a_speed_setting_with_the_same_numbers():
    plain, _ = train(smoke_run(epochs=2), CPU)
    compiled, model = train(smoke_run(epochs=2, compile=True), CPU)
    assert not any(k.startswith("_orig_mod") for k in model.state_dict())  # weights save as a plain model
    for a, b in zip(compiled["epochs"], plain["epochs"]):
        assert a["test_errors"] == b["test_errors"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_an_arm_with_a_teacher_records_its_top1_agreement_with_it():
    from repro.metrics import EPOCH_KEYS
    from repro.train import build_model, predict
    teacher_run = smoke_run("teacher", epochs=1)
    _, teacher = train(teacher_run, CPU)
    run = smoke_run("distilled", epochs=1)
    result, student = train(run, CPU, teacher=teacher)
    dataset = __import__("repro.train", fromlist=["dataset_of"]).dataset_of(run.arm)
    t_logits, _ = predict(teacher, dataset, run.arm, CPU)
    s_logits, _ = predict(student, dataset, run.arm, CPU)
    agree = float((t_logits.argmax(1) == s_logits.argmax(1)).double().mean())
    assert result["final"]["fidelity"] == pytest.approx(agree) and 0 < agree < 1
    assert set(result["epochs"][0]) <= set(EPOCH_KEYS)  # the reference documents every recorded key
    alone, _ = train(smoke_run("small", epochs=1), CPU)
    assert "fidelity" not in alone["final"]


# --- the loop that keeps a GPU busy (data.SYNC_FREE): tested on the CPU by declaring the CPU sync-free too ---

def synthetic_rgb(**changes):
    from repro.spec import Component
    data = Component(name="synthetic", params={"n_train": 96, "n_test": 32, "shape": [3, 12, 12], "noise": 1.0})
    return smoke_run(data=data, **changes)


SYNC_FREE_CASES = {  # every accounting and augmentation path of the loop, tiny
    "jitter, per-step accuracy": lambda: smoke_run(epochs=2, jitter_px=1, log_steps=True),
    "teacher: dropout, bf16": lambda: smoke_run("teacher", epochs=2, precision="bf16", jitter_px=2),
    "crop and flip, 3 channels": lambda: synthetic_rgb(epochs=2, crop_pad=2, hflip=True, batch_size=20),
}


@pytest.mark.parametrize("case", SYNC_FREE_CASES)
def test_the_sync_free_loop_gives_todays_numbers_to_the_last_bit(case, monkeypatch):
    """On a GPU, data, random draws and running sums stay on the device; the same loop run on the CPU must give
    exactly what the per-step path (every stored result) gives: the same data order, augmentation, float64
    sums and counts."""
    import repro.data
    run = SYNC_FREE_CASES[case]()
    today = without_time(train(run, CPU)[0])
    monkeypatch.setattr(repro.data, "SYNC_FREE", {"cpu", "cuda"})
    assert without_time(train(run, CPU)[0]) == today


def test_the_sync_free_loop_with_teacher_logits_and_stacked_seeds_gives_todays_numbers(monkeypatch):
    import repro.data
    from repro.stacked import train_stacked
    teacher_run = smoke_run("teacher", epochs=1)
    _, teacher = train(teacher_run, CPU)
    students = [smoke_run("distilled", epochs=2, cache_teacher_logits=c) for c in (True, False)]
    seeds = [smoke_run(epochs=2, jitter_px=1, log_steps=True).model_copy(update={"seed": s}) for s in (0, 1)]

    def results():
        return ([without_time(train(r, CPU, teacher)[0]) for r in students] +
                [without_time(r) for r, _ in train_stacked(seeds, CPU)])

    today = results()
    monkeypatch.setattr(repro.data, "SYNC_FREE", {"cpu", "cuda"})
    assert results() == today


HOST_READS = ("__float__", "__int__", "__bool__", "item", "tolist", "cpu", "numpy")


def host_reads_per_epoch(run, teacher, monkeypatch) -> list[int]:
    """How many times each epoch after the first reads a tensor's value back into Python (each a device sync
    on a GPU), counted at every Python-level read."""
    count, marks = [0], []
    with monkeypatch.context() as m:
        for name in HOST_READS:
            def counted(self, *args, _original=getattr(torch.Tensor, name), **kwargs):
                count[0] += 1
                return _original(self, *args, **kwargs)
            m.setattr(torch.Tensor, name, counted)
        train(run, CPU, teacher, on_epoch=lambda metrics: marks.append(count[0]))
    return [b - a for a, b in zip(marks, marks[1:])]


@pytest.mark.parametrize("arm", ["small", "distilled"])
def test_the_sync_free_loop_reads_back_a_constant_per_epoch_not_one_per_step(arm, monkeypatch):
    """Epochs of 4 and of 16 steps read back equally often (the epoch's sums and the evaluation); today's
    per-step path, which the CPU keeps, reads more with more steps (so the counter does see the reads)."""
    import repro.data
    from repro.spec import Component

    def reads(n_train, sync_free):
        base = smoke_run(arm, epochs=3, log_steps=True, **({"cache_teacher_logits": True} if arm == "distilled" else {}))
        data = Component(name="synthetic", params={**base.arm.data.params, "n_train": n_train})
        run = base.model_copy(update={"arm": base.arm.model_copy(update={"data": data})})
        teacher = None if run.teacher is None else train(run.teacher, CPU)[1]
        monkeypatch.setattr(repro.data, "SYNC_FREE", {"cpu", "cuda"} if sync_free else {"cuda"})
        return host_reads_per_epoch(run, teacher, monkeypatch)

    few, many = reads(256, True), reads(1024, True)  # batch 64: 4 and 16 steps an epoch
    assert few == many and len(set(few)) == 1, (few, many)
    assert reads(1024, False)[0] >= reads(256, False)[0] + 12 * 4, "per step: float() x3, int()"
