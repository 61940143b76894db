"""Seeds trained as one stacked model give the results of training them one by one."""
from __future__ import annotations

import pytest
import torch

from repro.plan import plan_claim
from repro.spec import load_claim
from repro.stacked import stack, train_stacked, why_not_stackable
from repro.train import train

CPU = torch.device("cpu")


def smoke_runs(arm, **changes):
    runs = plan_claim(load_claim("claims/hinton-kd-helps.yaml"), "as_described", "smoke")[arm]
    return [r.model_copy(update={"arm": r.arm.model_copy(update=changes)}) for r in runs]


def assert_same(stacked: dict, alone: dict, rel=1e-5):
    """Identical counts and float sums equal to `rel`: in fp32 the two ways differ only in the matmul
    kernels' last bits (weights within 1e-7 after 3 epochs)."""
    assert stacked["status"] == alone["status"]
    assert len(stacked["epochs"]) == len(alone["epochs"])
    for a, b in zip(stacked["epochs"], alone["epochs"]):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float):
                assert a[k] == pytest.approx(b[k], rel=rel, abs=rel / 10), k
            else:
                assert a[k] == b[k], k


def test_stacked_seeds_match_one_by_one_training():
    runs = smoke_runs("small", epochs=3, jitter_px=1, log_steps=True)
    stacked = train_stacked(runs, CPU)
    for run, (result, model) in zip(runs, stacked):
        alone, alone_model = train(run, CPU)
        assert_same(result, alone)
        for (name, a), b in zip(model.state_dict().items(), alone_model.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_stacked_bf16_computes_in_bf16_and_matches_to_bf16_rounding():
    """Autocast does not reach inside vmap, so stack() casts itself; a silent fp32 forward would be
    a different experiment. bf16 rounds to 2^-8, so two kernels agree to that, not to the last bit."""
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)) for _ in range(3)]
    x = torch.randn(3, 8, 20)
    _, forward = stack(models, "bf16")
    out = forward(x)
    assert out.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        alone = torch.stack([m(xs) for m, xs in zip(models, x)])
    torch.testing.assert_close(out.float(), alone.float(), rtol=2 ** -7, atol=2 ** -7)

    runs = smoke_runs("small", epochs=3, precision="bf16")
    for run, (result, _) in zip(runs, train_stacked(runs, CPU)):
        alone = train(run, CPU)[0]
        assert result["final"]["train_loss"] == pytest.approx(alone["final"]["train_loss"], rel=1e-3)
        assert abs(result["final"]["test_errors"] - alone["final"]["test_errors"]) <= 3  # of 256


def test_stacked_students_with_cached_teacher_logits_match_one_by_one():
    runs = smoke_runs("distilled", epochs=2, select="best")
    teachers = [train(r.teacher, CPU)[1] for r in runs]
    for (result, _), run, teacher in zip(train_stacked(runs, CPU, teachers), runs, teachers):
        assert_same(result, train(run, CPU, teacher)[0])


def test_a_killed_stacked_group_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    runs = smoke_runs("small", epochs=3)
    reference = [r for r, _ in train_stacked(runs, CPU)]
    paths = [tmp_path / f"{r.seed}.pt" for r in runs]

    import repro.stacked
    saves = []

    def save_then_die(path, obj):
        original_save(path, obj)
        saves.append(path)
        if len(saves) == 2 * len(runs):  # both epochs' per-seed states written, then killed
            raise KeyboardInterrupt

    original_save = repro.stacked.atomic_torch_save
    monkeypatch.setattr(repro.stacked, "atomic_torch_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_stacked(runs, CPU, state_paths=paths)
    monkeypatch.setattr(repro.stacked, "atomic_torch_save", original_save)
    assert all(len(torch.load(p, weights_only=True)["history"]) == 2 for p in paths)
    resumed = [r for r, _ in train_stacked(runs, CPU, state_paths=paths)]
    for a, b in zip(resumed, reference):
        assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}
    # the per-seed state is in train()'s format: one seed can finish alone from it
    alone = train(runs[1], CPU, resume_path=paths[1])[0]
    assert_same(alone, reference[1])


def test_arms_that_cannot_be_stacked_say_why():
    assert "dropout" in why_not_stackable(smoke_runs("teacher"))
    assert "single run" in why_not_stackable(smoke_runs("small")[:1])
    with pytest.raises(ValueError, match="dropout"):
        train_stacked(smoke_runs("teacher"), CPU)


def test_repro_run_stacks_the_seeds_of_dropout_free_arms_to_the_same_numbers(tmp_path):
    from repro.plan import plan
    from repro.run import LocalExecutor
    from repro.store import Store
    claim = load_claim("claims/hinton-kd-helps.yaml")
    finals, logs = {}, []
    for stacked in (False, True):
        store = Store(tmp_path / f"results-{stacked}", tmp_path / f"cache-{stacked}")
        jobs = plan([claim], "smoke", store)
        summary = LocalExecutor(store, CPU, log=logs.append, stack_seeds=stacked).submit(jobs)
        assert summary["counts"] == {"trained": 12, "cached": 6, "failed": 0}
        finals[stacked] = {job.path.relative_to(store.root): store.find(job.path)["final"] for job in jobs}
    # the small net and the as_described students (cached teacher logits) stack; the dropout teacher
    # and the as_written students (a train-mode teacher forward per step) train one by one
    assert sorted(line.split(" seeds")[0] for line in logs if "stacked" in line) == \
        ["hinton-kd-helps/as_described/distilled", "hinton-kd-helps/as_described/small"]
    for path, final in finals[True].items():
        alone = finals[False][path]
        assert final["test_errors"] == alone["test_errors"], path
        assert final["train_loss"] == pytest.approx(alone["train_loss"], rel=1e-5), path
