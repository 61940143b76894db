"""teacher_view: 'consistent' (the default: the teacher sees the student's augmented batch) or 'fixed' (its
predictions on the clean training images, computed once, for an augmented student; Beyer et al. 2022)."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from repro.registry import LOSSES
from repro.train import dataset_of, predict, train
from test_train import CPU, smoke_run


def soft_targets_seen(monkeypatch, run, teacher) -> list[torch.Tensor]:
    """The teacher logits the loss receives, step by step, in one training run."""
    seen, name = [], LOSSES._aliases.get(run.arm.loss.name, run.arm.loss.name)
    loss = LOSSES._entries[name]
    monkeypatch.setitem(LOSSES._entries, name, lambda s, y, t, **p: seen.append(t.detach().clone()) or loss(s, y, t, **p))
    train(run, CPU, teacher)
    return seen


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from repro.run import LocalExecutor
    from repro.store import Store
    root = tmp_path_factory.mktemp("teacher")
    return LocalExecutor(Store(root / "r", root / "c"), CPU).trained_model(smoke_run("distilled").teacher)


@pytest.mark.parametrize("view,all_clean", [("fixed", True), ("consistent", False)])
def test_a_fixed_teacher_gives_its_clean_image_predictions_to_an_augmented_student(monkeypatch, teacher, view, all_clean):
    run = smoke_run("distilled", epochs=2, jitter_px=3, teacher_view=view, cache_teacher_logits=False)
    clean = predict(teacher, dataset_of(run.arm), run.arm, CPU, split="train")[0]
    seen = torch.cat(soft_targets_seen(monkeypatch, run, teacher))
    matched = torch.cdist(seen, clean, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values < 1e-4  # each target: one of the clean predictions?
    assert bool(matched.all()) is all_clean
    assert len(seen) == 2 * len(clean)  # every training image, every epoch


def test_the_default_view_leaves_every_run_key_unchanged_and_fixed_is_its_own_run():
    run = smoke_run("distilled")
    assert smoke_run("distilled", teacher_view="consistent").key == run.key
    assert smoke_run("distilled", teacher_view="fixed").key != run.key
    assert "teacher_view" not in run.model_dump(mode="json", exclude_defaults=True)["arm"]


def test_a_fixed_view_needs_an_eval_mode_teacher_and_caching_points_to_it():
    run = smoke_run("distilled")
    arm = run.arm.model_dump()
    with pytest.raises(ValidationError, match="teacher_view: 'fixed' predicts once with a teacher in eval mode"):
        type(run.arm).model_validate({**arm, "teacher_view": "fixed", "teacher_mode": "train"})
    with pytest.raises(ValidationError, match="teacher_view: 'fixed' predicts once"):
        type(run.arm).model_validate({**arm, "teacher_view": "fixed", "teacher": None, "loss": {"name": "ce"}})
    with pytest.raises(ValidationError, match="use teacher_view: fixed"):
        type(run.arm).model_validate({**arm, "cache_teacher_logits": True, "jitter_px": 2})
    type(run.arm).model_validate({**arm, "teacher_view": "fixed", "jitter_px": 2, "cache_teacher_logits": False})  # allowed
