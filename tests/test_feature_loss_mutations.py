"""Every feature-loss invariant can fail: named mutations of repro.losses' FitNets and attention transfer, each
paired with the property test in tests/test_feature_losses.py that must catch it (the pattern of
tests/test_loss_mutations.py: a mutation patches a helper the losses look up at call time, or replaces a
registered loss; monkeypatch undoes it)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, settings

import repro.losses as L
import test_feature_losses as P
from repro.registry import LOSSES
from test_feature_losses import one_torch_thread  # noqa: F401  (fixture, autouse here too)

attention_map, Regressor = L.attention_map, L.Regressor  # the originals


def helper(name, fn):
    return lambda mp: mp.setattr(L, name, fn)


def loss(name, fn):
    return lambda mp: mp.setitem(LOSSES._entries, name, fn)


class PaddedRegressor(Regressor):
    """A 3x3 convolution padded to keep the hint's size (a common shortcut), not the paper's kernel."""

    def __init__(self, student_shape, teacher_shape, activation="relu"):
        super().__init__(student_shape, teacher_shape, activation)
        if isinstance(self.map, torch.nn.Conv2d):
            self.map = torch.nn.Conv2d(student_shape[0], teacher_shape[0], 3, padding=1)


class NoActivationRegressor(Regressor):
    def forward(self, x):
        return self.map(x)


def fitnets_with(soft_of):
    """fitnets with its hint term computed by soft_of(regressor, hint, guided)."""
    def fitnets(student_logits, targets, teacher_logits, student_features, teacher_features, head, hint_weight,
                ce_weight=1.0, activation="relu", label_smoothing=0.0):
        soft = sum(soft_of(r, s, t) for r, s, t in zip(head, student_features, teacher_features))
        return L.combine(L.hard_ce(student_logits, targets), soft, ce_weight, hint_weight)
    return fitnets


MUTATIONS = {
    "at_maps_not_normalised": helper("attention_map", lambda f: f.pow(2).mean(1).flatten(1)),
    "at_p_1_not_2": helper("attention_map", lambda f: F.normalize(f.abs().mean(1).flatten(1), dim=1)),
    "at_beta_not_halved": loss("attention_transfer", lambda z, y, v, student_features, teacher_features,
                               beta=1000.0, label_smoothing=0.0: L.combine(L.hard_ce(z, y), sum(
                                   (attention_map(s) - attention_map(t)).pow(2).mean()
                                   for s, t in zip(student_features, teacher_features)), 1.0, beta)),
    "at_teacher_not_detached": loss("attention_transfer", lambda z, y, v, student_features, teacher_features,
                                    beta=1000.0, label_smoothing=0.0: L.combine(L.hard_ce(z, y), sum(
                                        (attention_map(s) - attention_map(t)).pow(2).mean()
                                        for s, t in zip(student_features, teacher_features)), 1.0, beta / 2)),
    "fitnets_mse_summed_not_averaged": loss("fitnets", fitnets_with(
        lambda r, s, t: F.mse_loss(r(s), t.detach(), reduction="sum"))),
    "fitnets_l1_not_l2": loss("fitnets", fitnets_with(lambda r, s, t: F.l1_loss(r(s), t.detach()))),
    "fitnets_regressor_output_detached": loss("fitnets", fitnets_with(
        lambda r, s, t: F.mse_loss(r(s).detach() + s.mean() * 0, t.detach()))),
    "fitnets_teacher_not_detached": loss("fitnets", fitnets_with(lambda r, s, t: F.mse_loss(r(s), t))),
    "fitnets_regressor_padded_to_the_hint_size": helper("Regressor", PaddedRegressor),
    "fitnets_regressor_activation_ignored": helper("Regressor", NoActivationRegressor),
    "unlisted_feature_loss_registered": loss("unlisted_feature", L.fitnets),
}

CAUGHT_BY = [
    ("at_maps_not_normalised", "test_attention_transfer_is_zero_for_equal_or_rescaled_features"),
    ("at_p_1_not_2", "test_attention_transfer_matches_the_authors_at_loss"),
    ("at_beta_not_halved", "test_attention_transfer_matches_the_authors_at_loss"),
    ("at_teacher_not_detached", "test_attention_transfer_gradient_reaches_the_student_not_the_teacher"),
    ("fitnets_mse_summed_not_averaged", "test_fitnets_is_ce_plus_hint_weight_times_the_mse_of_the_regressed_hint"),
    ("fitnets_l1_not_l2", "test_fitnets_hint_term_scales_as_the_square_of_the_features"),
    ("fitnets_regressor_output_detached", "test_fitnets_gradients_reach_the_student_and_the_regressor_not_the_teacher"),
    ("fitnets_teacher_not_detached", "test_fitnets_gradients_reach_the_student_and_the_regressor_not_the_teacher"),
    ("fitnets_regressor_padded_to_the_hint_size", "test_the_regressor_maps_the_hint_onto_the_guided_layers_shape"),
    ("fitnets_regressor_activation_ignored",
     "test_fitnets_is_zero_where_the_regressor_maps_the_hint_onto_the_guided_layer"),
    ("unlisted_feature_loss_registered", "test_every_feature_loss_is_under_test"),
]


@pytest.mark.parametrize("mutation, test_name", CAUGHT_BY, ids=[f"{m}->{t}" for m, t in CAUGHT_BY])
def test_mutation_is_caught(monkeypatch, mutation, test_name):
    test = getattr(P, test_name)
    if hasattr(test, "hypothesis"):  # a counterexample is enough: skip shrinking and explaining it
        monkeypatch.setattr(test, "_hypothesis_internal_use_settings", settings(
            test._hypothesis_internal_use_settings, phases=[Phase.explicit, Phase.reuse, Phase.generate]))
    MUTATIONS[mutation](monkeypatch)
    with pytest.raises(AssertionError):
        test()


def test_every_invariant_test_has_a_mutation_and_every_mutation_a_test():
    invariants = {n for n in dir(P) if n.startswith("test_") and callable(getattr(P, n))}
    assert invariants == {t for _, t in CAUGHT_BY}
    assert set(MUTATIONS) == {m for m, _ in CAUGHT_BY}
