"""Every loss invariant can fail: named mutations of repro.losses, each paired with the property
test in tests/test_losses.py that must catch it. Re-check with

    .venv/bin/pytest tests/test_loss_mutations.py -q

A mutation patches one of the shared helpers in repro.losses (the losses look them up at call
time) or replaces one registered loss; monkeypatch undoes it after the test. The property test is
then called directly (without hypothesis's shrinking, to keep this quick) and must fail with an
AssertionError. Not marked `invariant`: these are tests
of the tests, not claims, so they stay out of the report.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, settings

import repro.losses as L
import test_losses as P
from repro.registry import LOSSES
from test_losses import one_torch_thread  # noqa: F401  (fixture, autouse here too)

soft_kl, log_probs, at_least_fp32 = L.soft_kl, L.log_probs, L.at_least_fp32  # the originals
dkd_terms, dkd = L.dkd_terms, L.dkd


def _dkd_terms_undetached(s, t, y, T):
    """dkd_terms whose value is unchanged but whose gradient reaches the teacher (as if it were not detached)."""
    tckd, nckd = dkd_terms(s, t, y, T)
    return tckd + (t - t.detach()).sum(), nckd


def helper(name, fn):
    """Replace a shared helper of repro.losses."""
    return lambda mp: mp.setattr(L, name, fn)


def loss(name, fn):
    """Replace one registered loss (the registry refuses re-registration, so patch its table)."""
    return lambda mp: mp.setitem(LOSSES._entries, name, fn)


def kl(log_q, log_p):
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


MUTATIONS = {
    "kl_sign_flipped": helper("soft_kl", lambda s, t, T: -soft_kl(s, t, T)),
    "temperature_on_student_only": helper("soft_kl", lambda s, t, T: kl(log_probs(s, T), log_probs(t.detach()))),
    "softmax_over_the_batch_not_the_classes": helper(
        "log_probs", lambda x, T=1.0: F.log_softmax(at_least_fp32(x) / T, dim=0)),
    "p_and_q_swapped": helper("soft_kl", lambda s, t, T: kl(log_probs(t.detach(), T), log_probs(s, T))),
    "hinton_T_squared_dropped": loss("hinton", lambda z, y, v, alpha, T: L.combine(
        L.hard_ce(z, y), L.soft_kl(z, v, T), 1 - alpha, alpha)),
    "T_squared_inside_the_soft_term": helper("soft_kl", lambda s, t, T: T * T * soft_kl(s, t, T)),
    "temperature_after_log_softmax": helper("log_probs", lambda x, T=1.0: F.log_softmax(at_least_fp32(x), -1) / T),
    "log_of_softmax": helper("log_probs", lambda x, T=1.0: torch.log(torch.softmax(at_least_fp32(x) / T, -1))),
    "no_fp32_upcast": helper("at_least_fp32", lambda x: x),
    "hinton_repro_batchmean_not_elementwise_mean": loss("hinton_repro", lambda z, y, v, alpha, T: L.combine(
        L.hard_ce(z, y), L.soft_kl(z, v, T), 1 - alpha, alpha * T * T)),
    "deit_soft_divided_by_batch_not_numel": loss("deit_soft", lambda z, y, v, alpha, T, label_smoothing=0.0:
        L.combine(L.hard_ce(z, y, label_smoothing), L.soft_kl(z, v, T), 1 - alpha, alpha * T * T)),
    "hinton_alpha_on_the_CE_as_torchdistill_names_it": loss("hinton", lambda z, y, v, alpha, T: L.combine(
        L.hard_ce(z, y), L.soft_kl(z, v, T), alpha, (1 - alpha) * T * T)),
    "hymenoptera_alpha_on_the_MSE": loss("hymenoptera", lambda z, y, v, alpha: L.combine(
        L.hard_ce(z, y), F.mse_loss(z, v.detach()), 1 - alpha, alpha)),
    "logged_soft_term_already_weighted": loss("hinton", lambda z, y, v, alpha, T: {
        **L.hinton(z, y, v, alpha, T), "soft": alpha * T * T * L.soft_kl(z, v, T)}),
    "mnist_course_T2_instead_of_2T2": loss("mnist_course", lambda z, y, v, alpha, T: L.combine(
        L.hard_ce(z, y), L.soft_kl_mean(z, v, T), 1 - alpha, T * T + alpha)),
    "mnist_course_alpha_switches_the_soft_term_off": loss("mnist_course", lambda z, y, v, alpha, T: L.combine(
        L.hard_ce(z, y), L.soft_kl_mean(z, v, T), 1 - alpha, (T * T * 2.0 + 1) * alpha)),
    "deit_hard_smooths_the_teacher_labels_too": loss("deit_hard", lambda z, y, v, alpha=0.5, label_smoothing=0.0:
        L.combine(L.hard_ce(z, y, label_smoothing), L.hard_ce(z, v.argmax(-1), label_smoothing), 1 - alpha, alpha)),
    "hymenoptera_mse_on_probabilities": loss("hymenoptera", lambda z, y, v, alpha: L.combine(
        L.hard_ce(z, y), F.mse_loss(z.softmax(-1), v.detach().softmax(-1)), alpha, 1 - alpha)),
    "mdistiller_kl_mean_over_all_elements": loss("mdistiller", lambda z, y, v, ce_weight, kd_weight, T: L.combine(
        L.hard_ce(z, y), L.soft_kl_mean(z, v, T), ce_weight, kd_weight * T * T)),
    "teacher_not_detached": helper("soft_kl", lambda s, t, T: kl(log_probs(s, T), log_probs(t, T))),
    "hymenoptera_teacher_not_detached": loss("hymenoptera", lambda z, y, v, alpha: L.combine(
        L.hard_ce(z, y), F.mse_loss(z, v), alpha, 1 - alpha)),
    "unlisted_loss_registered": loss("unlisted", L.hinton),
    "dkd_nckd_over_all_classes": helper("dkd_terms", lambda s, t, y, T: (
        dkd_terms(s, t, y, T)[0], kl(log_probs(s, T), log_probs(t.detach(), T)))),
    "dkd_tckd_and_nckd_swapped": helper("dkd_terms", lambda s, t, y, T: dkd_terms(s, t, y, T)[::-1]),
    "dkd_teacher_not_detached": helper("dkd_terms", lambda s, t, y, T: _dkd_terms_undetached(s, t, y, T)),
    "dkd_T_squared_dropped": loss("dkd", lambda z, y, v, alpha, beta, T, ce_weight=1.0, warmup=0, epoch=None,
                                  label_smoothing=0.0: L.combine(L.hard_ce(z, y), alpha * L.dkd_terms(z, v, y, T)[0]
                                  + beta * L.dkd_terms(z, v, y, T)[1], ce_weight, 1.0)),
    "dkd_warmup_ignored": loss("dkd", lambda z, y, v, alpha, beta, T, ce_weight=1.0, warmup=0, epoch=None,
                               label_smoothing=0.0: dkd(z, y, v, alpha, beta, T, ce_weight)),
    "dkd_student_probabilities_not_log": helper("dkd_terms", lambda s, t, y, T: tuple(
        x + F.kl_div(log_probs(s, T).exp(), log_probs(t.detach(), T), reduction="batchmean", log_target=True)
        for x in dkd_terms(s, t, y, T))),
}

# (mutation, property test in test_losses.py, its `name` parameter or None)
CAUGHT_BY = [
    ("kl_sign_flipped", "test_kl_loss_is_non_negative", "hinton"),
    ("temperature_on_student_only", "test_kl_loss_is_zero_at_equal_and_row_shifted_logits", "hinton_repro"),
    ("softmax_over_the_batch_not_the_classes", "test_kl_loss_is_zero_at_equal_and_row_shifted_logits", "hinton"),
    ("p_and_q_swapped", "test_soft_gradient_is_hinton_eq2_q_minus_p_over_T", "hinton"),
    ("T_squared_inside_the_soft_term", "test_raw_soft_gradient_scales_as_one_over_T_squared", "mdistiller"),
    ("hinton_T_squared_dropped", "test_T_squared_weight_keeps_soft_gradient_magnitude_constant", "hinton"),
    ("temperature_after_log_softmax", "test_high_temperature_soft_gradient_tends_to_logit_matching", "deit_soft"),
    ("hinton_repro_batchmean_not_elementwise_mean", "test_kl_reduction_elementwise_mean_is_batchmean_over_num_classes", "hinton_repro"),
    ("deit_soft_divided_by_batch_not_numel", "test_deit_soft_and_hinton_repro_equal_hinton_over_num_classes_at_alpha_1", None),
    ("mdistiller_kl_mean_over_all_elements", "test_mdistiller_equals_hinton_with_weights_1_minus_alpha_and_alpha", None),
    ("logged_soft_term_already_weighted", "test_loss_is_the_documented_weighted_sum_of_its_terms", "hinton"),
    ("mnist_course_T2_instead_of_2T2", "test_loss_matches_its_reference_implementation", "mnist_course"),
    ("deit_hard_smooths_the_teacher_labels_too", "test_loss_matches_its_reference_implementation", "deit_hard"),
    ("hymenoptera_mse_on_probabilities", "test_loss_matches_its_reference_implementation", "hymenoptera"),
    ("hinton_alpha_on_the_CE_as_torchdistill_names_it", "test_teacher_weight_0_leaves_only_the_hard_CE", "hinton"),
    ("hymenoptera_alpha_on_the_MSE", "test_teacher_weight_0_leaves_only_the_hard_CE", "hymenoptera"),
    ("hinton_alpha_on_the_CE_as_torchdistill_names_it", "test_teacher_weight_1_leaves_only_the_teacher_term", "hinton"),
    ("hymenoptera_alpha_on_the_MSE", "test_teacher_weight_1_leaves_only_the_teacher_term", "hymenoptera"),
    ("mnist_course_alpha_switches_the_soft_term_off", "test_mnist_course_alpha_0_still_has_its_2T2_soft_term", None),
    ("teacher_not_detached", "test_teacher_logits_receive_no_gradient", "hinton"),
    ("hymenoptera_teacher_not_detached", "test_teacher_logits_receive_no_gradient", "hymenoptera"),
    ("log_of_softmax", "test_finite_loss_and_gradients_for_logits_up_to_1e4_fp32", "hinton"),
    ("no_fp32_upcast", "test_bf16_autocast_loss_is_finite_fp32_and_equals_fp32_on_the_same_logits", "hinton"),
    ("unlisted_loss_registered", "test_every_registered_loss_is_under_test", None),
    ("dkd_nckd_over_all_classes", "test_loss_matches_its_reference_implementation", "dkd"),
    ("dkd_nckd_over_all_classes", "test_dkd_is_kd_at_alpha_1_and_beta_1_minus_the_teachers_target_probability", None),
    ("dkd_tckd_and_nckd_swapped", "test_dkd_gives_mdistillers_numbers_on_fixed_tensors", None),
    ("dkd_teacher_not_detached", "test_teacher_logits_receive_no_gradient", "dkd"),
    ("dkd_T_squared_dropped", "test_dkd_gives_mdistillers_numbers_on_fixed_tensors", None),
    ("dkd_warmup_ignored", "test_dkd_warmup_ramps_the_kd_term_linearly_to_full_weight", None),
    ("dkd_student_probabilities_not_log", "test_dkd_is_zero_where_student_and_teacher_agree", None),
]


def parametrized_names(test):
    marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
    return list(marks[0].args[1]) if marks else None


@pytest.mark.parametrize("mutation, test_name, name", CAUGHT_BY,
                         ids=[f"{m}->{t}" + (f"[{n}]" if n else "") for m, t, n in CAUGHT_BY])
def test_mutation_is_caught(monkeypatch, mutation, test_name, name):
    test, names = getattr(P, test_name), parametrized_names(getattr(P, test_name))
    assert (name is None and names is None) or name in (names or []), f"{test_name} is not run for {name}"
    if hasattr(test, "hypothesis"):  # a counterexample is enough: skip shrinking and explaining it
        monkeypatch.setattr(test, "_hypothesis_internal_use_settings", settings(
            test._hypothesis_internal_use_settings, phases=[Phase.explicit, Phase.reuse, Phase.generate]))
    MUTATIONS[mutation](monkeypatch)
    with pytest.raises(AssertionError):
        if name is None:
            test()
        else:
            test(name=name)


def test_every_invariant_test_has_a_mutation_and_every_mutation_a_test():
    invariants = {n for n in dir(P) if n.startswith("test_") and callable(getattr(P, n))}
    assert invariants == {t for _, t, _ in CAUGHT_BY}
    assert set(MUTATIONS) == {m for m, _, _ in CAUGHT_BY}
