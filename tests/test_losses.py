"""KD loss invariants as hypothesis property tests (CLAIMS.md, "Loss invariants").

Inputs come from hypothesis strategies only (never the global RNG), so every failure reproduces.
Tests marked `invariant` are also claims: their outcomes go into verdicts.json and the report.
Every test here is shown able to fail by a named mutation of the losses (tests/test_loss_mutations.py).
Tests parametrized over the registry look losses up at call time, so a mutation patched into the
registry is what they test.
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from repro.features import reads_features
from repro.registry import LOSSES

pytestmark = pytest.mark.invariant


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tensors are tiny: on a busy 2-core machine, waking a second intra-op thread costs
    ~100x the arithmetic (log_softmax of a 6x10 tensor: 2 ms with 2 threads, 8 us with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Convention:
    """How the tests drive one registered loss.

    params(s, T): its keyword parameters when a share s in [0, 1] of the weight is on the teacher term.
    weights(s, T): the multipliers it must put on its returned `hard` and `soft` terms.
    kl_rows(B, N): for KL-based losses, soft * kl_rows = KL summed over classes and rows
    (B for a batchmean KL, B * N for an elementwise mean).
    """
    params: Callable[[float, float], dict]
    weights: Callable[[float, float], tuple]
    kl_rows: Optional[Callable[[int, int], int]] = None


def alpha_T(s, T):
    return {"alpha": s, "T": T}


def hinton_weights(s, T):
    return 1 - s, s * T * T


def batchmean(rows, classes):
    return rows


def elementwise_mean(rows, classes):
    return rows * classes


CONVENTIONS = {
    "ce": Convention(lambda s, T: {}, lambda s, T: (1, 0)),
    "hinton": Convention(alpha_T, hinton_weights, batchmean),
    "hinton_repro": Convention(alpha_T, hinton_weights, elementwise_mean),
    "deit_soft": Convention(alpha_T, hinton_weights, elementwise_mean),
    "deit_hard": Convention(lambda s, T: {"alpha": s}, lambda s, T: (1 - s, s)),
    "mdistiller": Convention(lambda s, T: {"ce_weight": 1 - s, "kd_weight": s, "T": T}, hinton_weights, batchmean),
    "mnist_course": Convention(alpha_T, lambda s, T: (1 - s, 2 * T * T + s), elementwise_mean),
    "hymenoptera": Convention(lambda s, T: {"alpha": 1 - s}, lambda s, T: (1 - s, s)),  # alpha weights the CE
    # DKD: alpha = beta = s, so `soft` (alpha TCKD + beta NCKD) carries s and its weight is T^2
    "dkd": Convention(lambda s, T: {"ce_weight": 1 - s, "alpha": s, "beta": s, "T": T}, lambda s, T: (1 - s, T * T)),
}
# Losses of logits only; those that read hidden features have their invariants in tests/test_feature_losses.py.
ALL = [n for n in LOSSES.names() if not reads_features(n)]
KL_BASED = [n for n in ALL if n in CONVENTIONS and CONVENTIONS[n].kl_rows]
WITH_TEACHER = [n for n in ALL if n != "ce"]


def call(name, student, targets, teacher, s=1.0, T=1.0, **extra):
    """The registered loss `name` (looked up now, so mutations apply) at teacher share s and temperature T."""
    return LOSSES.get(name)(student, targets, teacher, **CONVENTIONS[name].params(s, T), **extra)


moderate = st.floats(-20, 20, allow_nan=False, width=32)
large = st.floats(-1e4, 1e4, allow_nan=False, width=32)
temperatures = st.floats(0.5, 50)
high_temperatures = st.floats(20, 40)
shares = st.floats(0, 1)


@st.composite
def logit_pairs(draw, elements=moderate, max_rows=6, max_classes=12):
    rows = draw(st.integers(1, max_rows))
    classes = draw(st.integers(2, max_classes))
    student = draw(arrays("float32", (rows, classes), elements=elements))
    teacher = draw(arrays("float32", (rows, classes), elements=elements))
    targets = draw(arrays("int64", (rows,), elements=st.integers(0, classes - 1)))
    return torch.from_numpy(student), torch.from_numpy(teacher), torch.from_numpy(targets)


def fp64(pair):
    """Identities are checked in fp64, so float32 rounding cannot hide (or fake) a difference."""
    student, teacher, targets = pair
    return student.double(), teacher.double(), targets


def soft_grad(name, student, teacher, T):
    """Gradient of the unweighted soft term, summed over rows (undoing its reduction), w.r.t. the
    student logits, in fp64."""
    z = student.double().clone().requires_grad_(True)
    soft = call(name, z, torch.zeros(len(z), dtype=torch.long), teacher.double(), 1.0, T)["soft"]
    (soft * CONVENTIONS[name].kl_rows(*z.shape)).backward()
    return z.grad


def loss_grad(name, student, teacher, T):
    """Gradient of the whole loss with all weight on the teacher term, in fp64."""
    z = student.double().clone().requires_grad_(True)
    call(name, z, torch.zeros(len(z), dtype=torch.long), teacher.double(), 1.0, T)["loss"].backward()
    return z.grad


def test_every_registered_loss_is_under_test():
    """A convention added to the registry without an entry here would escape every invariant."""
    logit_losses = {n for n in LOSSES.names() if not reads_features(n)}
    assert logit_losses <= set(CONVENTIONS), sorted(logit_losses - set(CONVENTIONS))


# --- KL >= 0, and = 0 where the two softmaxes agree ------------------------------------------------

@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=60)
@given(logit_pairs(), temperatures, shares)
def test_kl_loss_is_non_negative(name, pair, T, s):
    student, teacher, targets = pair
    parts = call(name, student, targets, teacher, s, T)
    assert parts["soft"] >= -1e-5
    assert parts["loss"] >= -1e-5 * (1 + CONVENTIONS[name].weights(s, T)[1])


@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=60)
@given(logit_pairs(), temperatures, arrays("float32", (6, 1), elements=moderate))
def test_kl_loss_is_zero_at_equal_and_row_shifted_logits(name, pair, T, shift):
    """softmax is shift-invariant per row, so teacher = student + c_row must give KL = 0 too."""
    student, _, targets = pair
    shifted = student + torch.from_numpy(shift[: len(student)])
    assert call(name, student, targets, student.clone(), 1.0, T)["soft"].abs() < 1e-5
    assert call(name, student, targets, shifted, 1.0, T)["soft"].abs() < 1e-4


# --- gradients: Hinton eq. 2, 1/T^2, the T^2 fix, the high-temperature limit -----------------------

@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=50)
@given(logit_pairs(), temperatures)
def test_soft_gradient_is_hinton_eq2_q_minus_p_over_T(name, pair, T):
    """Hinton et al. eq. 2: dC/dz_i = (q_i - p_i) / T, q = softmax(z/T) student, p = softmax(v/T) teacher.
    (The KL has the soft cross-entropy's gradient: the entropy of p does not depend on z.)"""
    student, teacher, _ = pair
    q = torch.softmax(student.double() / T, dim=1)
    p = torch.softmax(teacher.double() / T, dim=1)
    torch.testing.assert_close(soft_grad(name, student, teacher, T), (q - p) / T, atol=1e-9, rtol=1e-6)


@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=40)
@given(logit_pairs(max_classes=10), high_temperatures)
def test_raw_soft_gradient_scales_as_one_over_T_squared(name, pair, T):
    """In the high-temperature regime (|z|/T small) doubling T divides the soft gradient by 4."""
    student, teacher, _ = pair
    student, teacher = student / 20, teacher / 20  # |z| <= 1, so |z|/T <= 0.05
    g1 = soft_grad(name, student, teacher, T).norm()
    assume(g1 > 1e-10)  # equal (or row-shifted) logits have no gradient to scale
    g2 = soft_grad(name, student, teacher, 2 * T).norm()
    assert abs(4 * g2 / g1 - 1) < 0.05


@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=40)
@given(logit_pairs(max_classes=10), high_temperatures)
def test_T_squared_weight_keeps_soft_gradient_magnitude_constant(name, pair, T):
    """The loss's own T^2 factor undoes the 1/T^2: with all weight on the soft term, its gradient
    barely moves between T and 2T (for mnist_course, (2T^2 + 1) ~ 2T^2 at these T)."""
    student, teacher, _ = pair
    student, teacher = student / 20, teacher / 20
    g1 = loss_grad(name, student, teacher, T).norm()
    assume(g1 > 1e-10)
    g2 = loss_grad(name, student, teacher, 2 * T).norm()
    assert abs(g2 / g1 - 1) < 0.05


@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=40)
@given(logit_pairs(), st.floats(1e3, 1e4))
def test_high_temperature_soft_gradient_tends_to_logit_matching(name, pair, T):
    """Hinton sec. 2.1: with zero-meaned logits, T^2 dC/dz_i -> (z_i - v_i) / N as T grows, the
    gradient of 0.5 (z_i - v_i)^2 / N. The error is second order: |err| <= (max z^2 + max v^2) / (2 N T)."""
    student, teacher, _ = pair
    z, v = student.double(), teacher.double()  # centre in fp64: an fp32 residual mean is not zero
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    classes = z.shape[1]
    bound = (z.abs().max() ** 2 + v.abs().max() ** 2) / (classes * T) + 1e-9
    error = T * T * soft_grad(name, z, v, T) - (z - v) / classes
    assert error.abs().max() <= bound


# --- identities between conventions ------------------------------------------------------------

def kldivloss(student, teacher, T, reduction):
    """The sources' own call: nn.KLDivLoss(reduction)(log_softmax(z/T), softmax(v/T)) ('mean' warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nn.KLDivLoss(reduction=reduction)(F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1))


@pytest.mark.parametrize("name", KL_BASED)
@settings(max_examples=40)
@given(logit_pairs(), temperatures)
def test_kl_reduction_elementwise_mean_is_batchmean_over_num_classes(name, pair, T):
    """Each soft term is nn.KLDivLoss with the reduction its convention names, and the elementwise
    'mean' (KLDivLoss() default; DeiT's sum/numel) is 'batchmean' / N classes."""
    student, teacher, targets = fp64(pair)
    soft = call(name, student, targets, teacher, 1.0, T)["soft"]
    reduction = "batchmean" if CONVENTIONS[name].kl_rows is batchmean else "mean"
    torch.testing.assert_close(soft, kldivloss(student, teacher, T, reduction))
    torch.testing.assert_close(kldivloss(student, teacher, T, "mean"),
                               kldivloss(student, teacher, T, "batchmean") / student.shape[1])


@settings(max_examples=40)
@given(logit_pairs(), temperatures)
def test_deit_soft_and_hinton_repro_equal_hinton_over_num_classes_at_alpha_1(pair, T):
    student, teacher, targets = fp64(pair)
    reference = call("hinton", student, targets, teacher, 1.0, T)["loss"] / student.shape[1]
    for name in ("deit_soft", "hinton_repro"):
        torch.testing.assert_close(call(name, student, targets, teacher, 1.0, T)["loss"], reference)


@settings(max_examples=40)
@given(logit_pairs(), temperatures, shares)
def test_mdistiller_equals_hinton_with_weights_1_minus_alpha_and_alpha(pair, T, alpha):
    student, teacher, targets = fp64(pair)
    ours = LOSSES.get("mdistiller")(student, targets, teacher, ce_weight=1 - alpha, kd_weight=alpha, T=T)
    theirs = LOSSES.get("hinton")(student, targets, teacher, alpha=alpha, T=T)
    for key in ("loss", "hard", "soft"):
        torch.testing.assert_close(ours[key], theirs[key])


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40)
@given(logit_pairs(), temperatures, shares)
def test_loss_is_the_documented_weighted_sum_of_its_terms(name, pair, T, s):
    """`loss` = w_hard * hard + w_soft * soft with the weights the convention documents, and `hard`
    is the plain CE on the true labels, so the logged terms explain the loss exactly."""
    student, teacher, targets = fp64(pair)
    parts = call(name, student, targets, teacher, s, T)
    w_hard, w_soft = CONVENTIONS[name].weights(s, T)
    torch.testing.assert_close(parts["loss"], w_hard * parts["hard"] + w_soft * parts["soft"])
    torch.testing.assert_close(parts["hard"], F.cross_entropy(student, targets))


def reference_loss(name, z, y, v, s, T, smoothing):
    """Each convention transcribed from its source (share s on the teacher term), independently of repro.losses.
    `smoothing` smooths the true-label CE of every convention (a teacher's label smoothing, Mueller et al. 2019)."""
    ce = F.cross_entropy(z, y, label_smoothing=smoothing)
    log_q, p = F.log_softmax(z / T, dim=1), F.softmax(v / T, dim=1)
    if name == "ce":
        return ce
    if name == "hinton":  # torchdistill KDLoss(alpha=1-s): alpha CE + (1 - alpha) T^2 KLDivLoss('batchmean')
        return (1 - s) * ce + s * T ** 2 * kldivloss(z, v, T, "batchmean")
    if name == "hinton_repro":  # source 004
        return kldivloss(z, v, T, "mean") * (s * T * T) + ce * (1.0 - s)
    if name == "deit_soft":  # deit losses.py: kl_div(log, log, 'sum', log_target) * T^2 / numel
        kd = F.kl_div(log_q, F.log_softmax(v / T, dim=1), reduction="sum", log_target=True) * T * T / z.numel()
        return F.cross_entropy(z, y, label_smoothing=smoothing) * (1 - s) + kd * s
    if name == "deit_hard":  # deit losses.py: CE(outputs_kd, teacher.argmax(dim=1))
        return F.cross_entropy(z, y, label_smoothing=smoothing) * (1 - s) + F.cross_entropy(z, v.argmax(dim=1)) * s
    if name == "mdistiller":  # kd_loss: kl_div(..., 'none').sum(1).mean() * T^2
        return (1 - s) * ce + s * F.kl_div(log_q, p, reduction="none").sum(1).mean() * T ** 2
    if name == "mnist_course":  # source 002
        return kldivloss(z, v, T, "mean") * (T * T * 2.0 + s) + ce * (1.0 - s)
    if name == "hymenoptera":  # source 001: alpha CE + (1 - alpha) nn.MSELoss()(logits), alpha = 1 - s
        return (1 - s) * ce + s * nn.MSELoss()(z, v)
    if name == "dkd":  # mdistiller DKD: ce_weight CE + dkd_loss(alpha = beta = s)
        return (1 - s) * ce + mdistiller_dkd_loss(z, v, y, s, s, T)
    raise KeyError(name)


def mdistiller_dkd_loss(logits_student, logits_teacher, target, alpha, beta, temperature):
    """mdistiller `mdistiller/distillers/DKD.py` dkd_loss, transcribed (its size_average=False is reduction='sum');
    independent of repro.losses: probabilities, torch.log, the target masked out with -1000."""
    gt_mask = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(logits_student).scatter_(1, target.unsqueeze(1), 0).bool()

    def cat_mask(t, mask1, mask2):
        t1 = (t * mask1).sum(dim=1, keepdims=True)
        t2 = (t * mask2).sum(1, keepdims=True)
        return torch.cat([t1, t2], dim=1)

    pred_student = cat_mask(F.softmax(logits_student / temperature, dim=1), gt_mask, other_mask)
    pred_teacher = cat_mask(F.softmax(logits_teacher / temperature, dim=1), gt_mask, other_mask)
    tckd_loss = F.kl_div(torch.log(pred_student), pred_teacher, reduction="sum") * temperature ** 2 / target.shape[0]
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd_loss = F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum") * temperature ** 2 / target.shape[0]
    return alpha * tckd_loss + beta * nckd_loss


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40)
@given(logit_pairs(), temperatures, shares, st.floats(0, 0.3))
def test_loss_matches_its_reference_implementation(name, pair, T, s, smoothing):
    student, teacher, targets = fp64(pair)
    if "label_smoothing" not in inspect.signature(LOSSES.get(name)).parameters:
        smoothing = 0.0
    ours = call(name, student, targets, teacher, s, T, **({"label_smoothing": smoothing} if smoothing else {}))
    torch.testing.assert_close(ours["loss"], reference_loss(name, student, targets, teacher, s, T, smoothing))


@pytest.mark.parametrize("name", [n for n in WITH_TEACHER if n != "mnist_course"])
@settings(max_examples=30)
@given(logit_pairs(), temperatures)
def test_teacher_weight_0_leaves_only_the_hard_CE(name, pair, T):
    """alpha=0 (hymenoptera: alpha=1; mdistiller: kd_weight=0) is plain cross-entropy."""
    student, teacher, targets = fp64(pair)
    torch.testing.assert_close(call(name, student, targets, teacher, 0.0, T)["loss"], F.cross_entropy(student, targets))


@pytest.mark.parametrize("name", [n for n in WITH_TEACHER if n != "dkd"])
@settings(max_examples=30)
@given(logit_pairs(), temperatures)
def test_teacher_weight_1_leaves_only_the_teacher_term(name, pair, T):
    """alpha=1 (hymenoptera: alpha=0; mdistiller: ce_weight=0): the true labels no longer matter.
    (Not DKD: its two terms split the classes at the true label, so labels matter at ce_weight 0 too.)"""
    student, teacher, targets = fp64(pair)
    other = (targets + 1) % student.shape[1]
    torch.testing.assert_close(call(name, student, targets, teacher, 1.0, T)["loss"],
                               call(name, student, other, teacher, 1.0, T)["loss"])


@settings(max_examples=30)
@given(logit_pairs(), temperatures)
def test_mnist_course_alpha_0_still_has_its_2T2_soft_term(pair, T):
    """Source 002 as written weights the KL by (2 T^2 + alpha): alpha=0 does not switch it off."""
    student, teacher, targets = fp64(pair)
    expected = F.cross_entropy(student, targets) + 2 * T * T * kldivloss(student, teacher, T, "mean")
    torch.testing.assert_close(call("mnist_course", student, targets, teacher, 0.0, T)["loss"], expected)


@pytest.mark.parametrize("name", WITH_TEACHER)
@settings(max_examples=20)
@given(logit_pairs(), temperatures, st.floats(0.1, 1))
def test_teacher_logits_receive_no_gradient(name, pair, T, s):
    """Soft targets are constants: even a teacher output that requires grad gets none from the loss."""
    student, teacher, targets = pair
    z, v = student.clone().requires_grad_(True), teacher.clone().requires_grad_(True)
    call(name, z, targets, v, s, T)["loss"].backward()
    assert v.grad is None or not v.grad.any()


# --- numerical stability -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
@settings(max_examples=40)
@given(logit_pairs(elements=large), temperatures, shares)
def test_finite_loss_and_gradients_for_logits_up_to_1e4_fp32(name, pair, T, s):
    student, teacher, targets = pair
    z = student.clone().requires_grad_(True)
    parts = call(name, z, targets, teacher, s, T)
    parts["loss"].backward()
    for key in ("loss", "hard", "soft"):
        assert torch.isfinite(parts[key]), key
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=30)
@given(logit_pairs(elements=large), temperatures, shares)
def test_bf16_autocast_loss_is_finite_fp32_and_equals_fp32_on_the_same_logits(name, pair, T, s):
    """Under bf16 autocast the loss arithmetic runs in fp32: every term comes back fp32, finite,
    equal to the fp32 loss of the same (bf16-rounded) logits, with finite gradients."""
    student, teacher, targets = pair
    z = student.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zb, vb = z.to(torch.bfloat16), teacher.to(torch.bfloat16)
        parts = call(name, zb, targets, vb, s, T)
    reference = call(name, zb.detach().float(), targets, vb.float(), s, T)
    for key in ("loss", "hard", "soft"):
        assert parts[key].dtype == torch.float32, key
        assert torch.isfinite(parts[key]), key
        torch.testing.assert_close(parts[key], reference[key])
    parts["loss"].backward()
    assert torch.isfinite(z.grad).all()


# --- DKD (Zhao et al. 2022) ----------------------------------------------------------------------

def test_dkd_gives_mdistillers_numbers_on_fixed_tensors():
    """mdistiller's CIFAR-100 setting (alpha 1, beta 8, T 4) on fixed logits, against the transcription above."""
    z = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.1, 0.2, -0.3, 1.5], [4.0, 1.0, -2.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0, 2.5, -1.0], [3.0, -2.0, 0.0, 0.5], [2.0, 2.0, -1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([3, 0, 1])
    ours = LOSSES.get("dkd")(z, y, v, alpha=1.0, beta=8.0, T=4.0)
    torch.testing.assert_close(ours["loss"] - ours["hard"], mdistiller_dkd_loss(z, v, y, 1.0, 8.0, 4.0))
    torch.testing.assert_close(ours["hard"], F.cross_entropy(z, y))


@settings(max_examples=40)
@given(logit_pairs(max_rows=1), temperatures)
def test_dkd_is_kd_at_alpha_1_and_beta_1_minus_the_teachers_target_probability(pair, T):
    """Zhao et al. eq. 7, per example: KD = TCKD + (1 - p_target^T) NCKD (teacher's p at temperature T)."""
    student, teacher, targets = fp64(pair)
    p_target = float(torch.softmax(teacher / T, dim=1)[0, targets[0]])
    ours = LOSSES.get("dkd")(student, targets, teacher, alpha=1.0, beta=1 - p_target, T=T, ce_weight=0.0)
    torch.testing.assert_close(ours["loss"], T * T * kldivloss(student, teacher, T, "batchmean"))


@settings(max_examples=30)
@given(logit_pairs(), temperatures, st.integers(1, 40), st.integers(1, 40))
def test_dkd_warmup_ramps_the_kd_term_linearly_to_full_weight(pair, T, epoch, warmup):
    """mdistiller: min(epoch / warmup, 1) on the KD term; the CE term is not ramped."""
    student, teacher, targets = fp64(pair)
    full = LOSSES.get("dkd")(student, targets, teacher, alpha=1.0, beta=8.0, T=T)
    ramped = LOSSES.get("dkd")(student, targets, teacher, alpha=1.0, beta=8.0, T=T, warmup=warmup, epoch=epoch)
    r = min(epoch / warmup, 1.0)
    torch.testing.assert_close(ramped["loss"], full["hard"] + r * (full["loss"] - full["hard"]))
    torch.testing.assert_close(ramped["soft"], full["soft"])


@settings(max_examples=30)
@given(logit_pairs(), temperatures, st.floats(0, 10), st.floats(0, 10))
def test_dkd_is_zero_where_student_and_teacher_agree(pair, T, alpha, beta):
    student, _, targets = fp64(pair)
    parts = LOSSES.get("dkd")(student, targets, student.clone(), alpha=alpha, beta=beta, T=T, ce_weight=0.0)
    assert parts["loss"].abs() < 1e-10
