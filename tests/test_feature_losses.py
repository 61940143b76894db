"""Invariants of the losses that read hidden features (FitNets, attention transfer), as hypothesis properties.

Inputs come from strategies only (never the global RNG). Every test here is shown able to fail by a named
mutation in tests/test_feature_loss_mutations.py. Losses are looked up at call time, so mutations apply.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import repro.losses as L
from repro.features import reads_features
from repro.registry import LOSSES

pytestmark = pytest.mark.invariant

UNDER_TEST = {"fitnets", "attention_transfer"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


values = st.floats(-5, 5, allow_nan=False, width=32)


@st.composite
def feature_pairs(draw, pairs=st.integers(1, 2), same_channels=False, same_size=True):
    """(student features, teacher features, student logits, targets): lists of (B, C, H, W) fp64 tensors."""
    rows, classes, n = draw(st.integers(1, 3)), draw(st.integers(2, 5)), draw(pairs)
    students, teachers = [], []
    for _ in range(n):
        cs, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
        ct = cs if same_channels else draw(st.integers(1, 4))
        ht, wt = (h, w) if same_size else (draw(st.integers(1, h)), draw(st.integers(1, w)))
        students.append(torch.from_numpy(draw(arrays("float32", (rows, cs, h, w), elements=values))).double())
        teachers.append(torch.from_numpy(draw(arrays("float32", (rows, ct, ht, wt), elements=values))).double())
    logits = torch.from_numpy(draw(arrays("float32", (rows, classes), elements=values))).double()
    targets = torch.from_numpy(draw(arrays("int64", (rows,), elements=st.integers(0, classes - 1))))
    return students, teachers, logits, targets


def call(name, students, teachers, logits, targets, head=None, **params):
    extra = {"head": head} if name == "fitnets" else {}
    return LOSSES.get(name)(logits, targets, logits.detach() + 1, student_features=students,
                            teacher_features=teachers, **extra, **params)


def regressors(students, teachers, activation="none"):
    """The loss's own regressors for these features, initialised from a fixed seed (never the global RNG's state)."""
    shapes = [tuple(s.shape[1:]) for s in students], [tuple(t.shape[1:]) for t in teachers]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return L.fitnets_head(*shapes, activation=activation).double()


def test_every_feature_loss_is_under_test():
    assert {n for n in LOSSES.names() if reads_features(n)} == UNDER_TEST


# --- attention transfer ----------------------------------------------------------------------------

def authors_at(x):
    """szagoruyko/attention-transfer utils.py, transcribed: at(x) = F.normalize(x.pow(2).mean(1).view(B, -1))."""
    return F.normalize(x.pow(2).mean(1).view(x.size(0), -1))


@settings(max_examples=40)
@given(feature_pairs(), st.floats(0, 2000))
def test_attention_transfer_matches_the_authors_at_loss(pair, beta):
    """CE + beta/2 * sum over pairs of at_loss(x, y) = (at(x) - at(y)).pow(2).mean() (the authors' main loop)."""
    students, teachers, logits, targets = pair
    parts = call("attention_transfer", students, teachers, logits, targets, beta=beta)
    at_loss = sum((authors_at(s) - authors_at(t)).pow(2).mean() for s, t in zip(students, teachers))
    torch.testing.assert_close(parts["soft"], at_loss)
    torch.testing.assert_close(parts["loss"], F.cross_entropy(logits, targets) + beta / 2 * at_loss)


@settings(max_examples=40)
@given(feature_pairs(), st.floats(0.01, 100), st.sampled_from([1.0, -1.0]))
def test_attention_transfer_is_zero_for_equal_or_rescaled_features(pair, scale, sign):
    """Attention maps are normalised: a student whose features are the teacher's times any c != 0 matches it."""
    students, _, logits, targets = pair
    parts = call("attention_transfer", [sign * scale * s for s in students], students, logits, targets)
    assert parts["soft"].abs() < 1e-12


@settings(max_examples=30)
@given(feature_pairs())
def test_attention_transfer_gradient_reaches_the_student_not_the_teacher(pair):
    students, teachers, logits, targets = pair
    s = [x.clone().requires_grad_(True) for x in students]
    t = [x.clone().requires_grad_(True) for x in teachers]
    call("attention_transfer", s, t, logits, targets)["soft"].backward()
    assert all(x.grad is None or not x.grad.any() for x in t)
    assert all(x.grad is not None for x in s)


# --- FitNets -----------------------------------------------------------------------------------------

@settings(max_examples=40)
@given(feature_pairs(same_size=False), st.floats(0, 200), st.floats(0, 2))
def test_fitnets_is_ce_plus_hint_weight_times_the_mse_of_the_regressed_hint(pair, hint_weight, ce_weight):
    """ce_weight CE + hint_weight sum_pairs nn.MSELoss()(regressor(hint), guided) (mdistiller FitNet.py)."""
    students, teachers, logits, targets = pair
    head = regressors(students, teachers)
    parts = call("fitnets", students, teachers, logits, targets, head, hint_weight=hint_weight, ce_weight=ce_weight)
    mse = sum(torch.nn.MSELoss()(r(s), t) for r, s, t in zip(head, students, teachers))
    torch.testing.assert_close(parts["soft"], mse)
    torch.testing.assert_close(parts["loss"], ce_weight * F.cross_entropy(logits, targets) + hint_weight * mse)


@settings(max_examples=40)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), st.integers(0, 5), st.integers(0, 5),
       st.integers(1, 5))
def test_the_regressor_maps_the_hint_onto_the_guided_layers_shape(cs, ht, wt, dh, dw, ct):
    """Romero et al. sec. 2.2: a convolution without padding, kernel (H_s - H_t + 1, W_s - W_t + 1)."""
    head = L.fitnets_head([(cs, ht + dh, wt + dw)], [(ct, ht, wt)])
    assert head[0](torch.zeros(2, cs, ht + dh, wt + dw)).shape == (2, ct, ht, wt)


@settings(max_examples=30)
@given(feature_pairs(same_channels=True), st.sampled_from(["none", "relu"]))
def test_fitnets_is_zero_where_the_regressor_maps_the_hint_onto_the_guided_layer(pair, activation):
    """An identity regressor (1x1 conv, identity weights) and a guided layer = act(hint): nothing to learn."""
    students, _, logits, targets = pair
    head = regressors(students, students, activation)
    with torch.no_grad():
        for r in head:
            r.map.weight.copy_(torch.eye(r.map.in_channels, dtype=torch.float64)[:, :, None, None])
            r.map.bias.zero_()
    guided = [torch.relu(s) if activation == "relu" else s for s in students]
    assert call("fitnets", students, guided, logits, targets, head, hint_weight=1.0)["soft"].abs() < 1e-12


@settings(max_examples=30)
@given(feature_pairs(same_size=False), st.floats(0.1, 10))
def test_fitnets_hint_term_scales_as_the_square_of_the_features(pair, c):
    """L2: with a linear regressor without bias, scaling hint and guided layer by c scales the term by c^2."""
    students, teachers, logits, targets = pair
    head = regressors(students, teachers)
    with torch.no_grad():
        for r in head:
            r.map.bias.zero_()
    base = call("fitnets", students, teachers, logits, targets, head, hint_weight=1.0)["soft"]
    assume(base > 1e-6)
    scaled = call("fitnets", [c * s for s in students], [c * t for t in teachers], logits, targets, head,
                  hint_weight=1.0)["soft"]
    torch.testing.assert_close(scaled, c * c * base)


@settings(max_examples=30)
@given(feature_pairs(same_size=False))
def test_fitnets_gradients_reach_the_student_and_the_regressor_not_the_teacher(pair):
    students, teachers, logits, targets = pair
    head = regressors(students, teachers)
    s = [x.clone().requires_grad_(True) for x in students]
    t = [x.clone().requires_grad_(True) for x in teachers]
    soft = call("fitnets", s, t, logits, targets, head, hint_weight=1.0)["soft"]
    assume(soft > 1e-6)
    soft.backward()
    assert all(x.grad is None or not x.grad.any() for x in t)
    assert all(x.grad is not None and x.grad.any() for x in s)
    assert all(p.grad is not None for p in head.parameters()) and any(p.grad.any() for p in head.parameters())
