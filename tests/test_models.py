"""Models: dropout keeps nn.Dropout's distribution and scaling; unknown settings fail clearly."""
from __future__ import annotations

import pytest
import torch
from scipy import stats

from repro.models import Dropout, create_model


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_keeps_1_minus_p_of_units_and_scales_them_by_1_over_1_minus_p(p):
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    out = Dropout(p)(x)
    kept = out != 0
    # the kept count is Binomial(n, 1 - p): a two-sided exact test, not a fixed tolerance
    assert stats.binomtest(int(kept.sum()), kept.numel(), 1 - p).pvalue > 1e-3
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)))


def test_dropout_is_off_in_eval_mode_unless_always_on():
    x = torch.randn(64, 32)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert (Dropout(0.5, always_on=True).eval()(x) == 0).any()  # the mnist-course teacher's F.dropout
    assert Dropout(0.0)(x) is x


def test_dropout_gradient_flows_through_kept_units_only():
    torch.manual_seed(1)
    x = torch.randn(16, 40, requires_grad=True)
    out = Dropout(0.5)(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * 2.0)


def test_dropout_masks_follow_the_seed():
    x = torch.ones(8, 100)
    torch.manual_seed(3)
    a = Dropout(0.5)(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.5)(x), a)


def test_dropout_probability_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\), got 1.0"):
        Dropout(1.0)


def test_mlp_dropout_layers_are_repro_dropout():
    mlp = create_model("mlp", (1, 28, 28), 10, hidden=[16, 16], input_dropout=0.2, hidden_dropout=0.5)
    assert [m.p for m in mlp.modules() if isinstance(m, Dropout)] == [0.2, 0.5, 0.5]


@pytest.mark.parametrize("depth,params", [(20, 272_474), (32, 466_906)])
def test_resnet_cifar_has_the_parameter_count_of_he_et_al(depth, params):
    # He et al. 2016 Table 6: ResNet-20 0.27M, ResNet-32 0.46M (1x1 projection shortcuts add a few thousand)
    model = create_model("resnet_cifar", (3, 32, 32), 10, depth=depth)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_cifar_refuses_a_depth_that_is_not_6n_plus_2():
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        create_model("resnet_cifar", (3, 32, 32), 10, depth=21)


def test_missing_imagenet_weights_are_reported_without_a_local_absolute_path(tmp_path, monkeypatch):
    """The reason lands in the published report: it names $TORCH_HOME, not this machine's home folder."""
    import torch.hub

    from repro.models import weights_availability
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    why = weights_availability("resnet18", {"weights": "imagenet"})
    assert why.startswith("ImageNet weights for resnet18 are not on this machine ($TORCH_HOME/hub/checkpoints/resnet18-")
    assert str(tmp_path) not in why
