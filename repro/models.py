"""Models, built by name from the MODELS registry: `create_model(name, in_shape, num_classes, **params)`."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Optional

import torch
from pydantic import AfterValidator, Field
from torch import nn

from .registry import MODELS, Count, DropRate, Positive, Width


class WeightsMissing(RuntimeError):
    """Pretrained weights were asked for and cannot be loaded; never replaced by a silent random init."""


def create_model(name: str, in_shape: tuple[int, ...], num_classes: int, **params) -> nn.Module:
    return MODELS.get(name)(in_shape=in_shape, num_classes=num_classes, **params)


def init_normal(model: nn.Module, std: float) -> None:
    """The mnist-course init: Linear/Conv weights N(0, std), biases 0, norm-layer weights N(1, std)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class Dropout(nn.Module):
    """Inverted dropout, its mask drawn as `torch.rand(...) >= p`: the distribution of nn.Dropout, whose
    bernoulli_ draws one double per element serially and took 30% of a 1200-1200 teacher's CPU step
    (torch.profiler; this draw is 3.5x faster, `make bench`). `always_on` keeps it active in eval mode,
    as F.dropout's default training=True does in the mnist-course teacher."""

    def __init__(self, p: float, always_on: bool = False):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.always_on = p, always_on

    def forward(self, x):
        if self.p == 0 or not (self.training or self.always_on):
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep * (1 / (1 - self.p))


class MLP(nn.Module):
    """ReLU MLP on flattened inputs: dropout on the input and after each hidden layer, optional batch norm."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int, input_dropout: float = 0.0,
                 hidden_dropout: float = 0.0, batch_norm: bool = False, dropout_always_on: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), Dropout(input_dropout, dropout_always_on)]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else [])
            layers += [nn.ReLU(), Dropout(hidden_dropout, dropout_always_on)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("mlp")
def create_mlp(in_shape, num_classes, hidden: list[Width], input_dropout: DropRate = 0.0,
               hidden_dropout: DropRate = 0.0, batch_norm: bool = False, dropout_always_on: bool = False,
               init_std: Optional[Positive] = None):
    """A ReLU MLP on flattened images: `hidden` widths (e.g. [800, 800]); dropout on the input and after
    each hidden layer; optional batch norm; `dropout_always_on` keeps dropout on at evaluation too (a
    source's F.dropout bug); `init_std` draws the weights from N(0, init_std) instead of PyTorch's default."""
    model = MLP(math.prod(in_shape), list(hidden), num_classes, input_dropout, hidden_dropout, batch_norm,
                dropout_always_on)
    if init_std is not None:
        init_normal(model, init_std)
    return model


def weights_availability(name: str, params: dict) -> str | None:
    """None unless the model wants ImageNet weights that are not in torch's hub cache (the reason)."""
    if params.get("weights") != "imagenet":
        return None
    import torch.hub
    import torchvision
    url = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if path.exists():
        return None
    return (f"ImageNet weights for {name} are not on this machine ($TORCH_HOME/hub/checkpoints/{path.name} is missing "
            "and they cannot be downloaded offline): the source's protocol needs them; see the from_scratch variant")


def torchvision_resnet(arch: str, num_classes: int, weights: str) -> nn.Module:
    import torchvision
    if weights not in ("imagenet", "none"):
        raise ValueError(f"weights must be 'imagenet' or 'none', got {weights!r}")
    builder = getattr(torchvision.models, arch)
    if weights == "none":
        model = builder(weights=None)
    else:
        try:
            model = builder(weights="IMAGENET1K_V1")
        except Exception as err:
            raise WeightsMissing(
                f"ImageNet weights for {arch} could not be loaded ({type(err).__name__}: {str(err)[:120]}); "
                f"put them in $TORCH_HOME/hub/checkpoints/ or use the spec's from_scratch variant") from None
    model.fc = nn.Linear(model.fc.in_features, num_classes)  # new head, as in fine-tuning
    return model


@MODELS.register("resnet18")
def create_resnet18(in_shape, num_classes, weights: Literal["imagenet", "none"] = "none"):
    """torchvision ResNet-18 with a new head; `weights`: 'none' (from scratch) or 'imagenet'."""
    return torchvision_resnet("resnet18", num_classes, weights)


@MODELS.register("resnet50")
def create_resnet50(in_shape, num_classes, weights: Literal["imagenet", "none"] = "none"):
    """torchvision ResNet-50 with a new head; `weights`: 'none' (from scratch) or 'imagenet'."""
    return torchvision_resnet("resnet50", num_classes, weights)


@MODELS.register("vit_tiny")
def create_vit_tiny(in_shape, num_classes, patch_size: Count = 16, drop_path_rate: DropRate = 0.0):
    """timm's ViT-Ti (192 wide, 12 blocks, 3 heads); patch 16 at 224 px as in the source, or patch 4
    at native 32 px CIFAR. No pretrained weights: the sources train it from scratch."""
    import timm
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes,
                             img_size=in_shape[-1], patch_size=patch_size, drop_path_rate=drop_path_rate)


@MODELS.register("small_cnn")
def create_small_cnn(in_shape, num_classes, width: Width = 32):
    """A small CIFAR convnet (~0.3M parameters at width 32): a teacher a 2-core CPU can train in minutes."""
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    w = width
    return nn.Sequential(*block(in_shape[0], w), *block(w, w), nn.MaxPool2d(2),
                         *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
                         *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes))


class BasicBlock(nn.Module):
    """He et al. 2016's CIFAR block: two 3x3 convs with batch norm; a 1x1 conv shortcut where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@MODELS.register("resnet_cifar")
def create_resnet_cifar(in_shape, num_classes, depth: Annotated[int, Field(ge=8, le=1202)] = 20, width: Width = 16):
    """The CIFAR ResNets of He et al. 2016 (sec. 4.2): a 3x3 stem, three stages of (depth - 2) / 6 basic
    blocks at width, 2 width and 4 width channels (32, 16, 8 px), global average pooling, one linear
    layer. depth 20 at width 16 is ResNet-20 (0.27M parameters, 41 MFLOPs per 32 px image)."""
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    layers: list[nn.Module] = [nn.Conv2d(in_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage in range(3):
        cout = width * 2 ** stage
        for i in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def timm_architecture(name: str) -> str:
    """An architecture timm can build (timm.list_models()), checked by `repro validate`."""
    import timm
    if not isinstance(name, str) or not timm.is_model(name):
        shown = name if len(str(name)) <= 40 else str(name)[:37] + "..."
        raise ValueError(f"'{shown}' is not a timm architecture; timm.list_models('resnet*') lists them "
                         "(e.g. resnet10t, resnet18, mobilenetv3_small_050, vit_tiny_patch16_224)")
    return name


# Keyword arguments kd-repro sets itself on every timm model: the spec cannot set them differently.
TIMM_RESERVED = {"pretrained": "no pretrained weights can be fetched here: timm models train from scratch",
                 "num_classes": "set from the dataset", "in_chans": "set from the dataset's channels"}


def timm_kwargs(kwargs: dict) -> dict:
    for key, why in TIMM_RESERVED.items():
        if key in kwargs:
            raise ValueError(f"timm: '{key}' is set by kd-repro ({why})")
    return kwargs


@MODELS.register("timm")
def create_timm(in_shape, num_classes, arch: Annotated[str, AfterValidator(timm_architecture)], **kwargs):
    """Any timm architecture by name, from scratch: `{name: timm, arch: resnet10t}` plus timm's own keyword
    arguments for it (e.g. `drop_rate: 0.1`, `img_size: 32` for a ViT), passed to timm.create_model as
    written; `num_classes` and `in_chans` come from the dataset, and `pretrained` is never set."""
    import timm
    timm_architecture(arch)
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_shape[0],
                             **timm_kwargs(kwargs))


create_timm.check_params = timm_kwargs  # `repro validate` refuses pretrained / num_classes / in_chans too
