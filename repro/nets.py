"""A run's device, dataset, network and forward passes: what train, teachers and stacked share.

The dataset of an arm (cached in-process), its network built for that dataset, the augmentation and precision
it trains at, the kernels that suit the device, and a whole split's logits.
"""
from __future__ import annotations

import dataclasses
from contextlib import nullcontext

import torch

from .data import Augment, load_dataset
from .models import create_model
from .spec import Arm, RunSpec


def pick_device(name: str | None) -> torch.device:
    """The device asked for (default: CUDA when there is one); CUDA asked for where there is none is a ValueError."""
    if name == "cuda" and not torch.cuda.is_available():
        build = f"torch {torch.__version__}, " + ("built with CUDA " + torch.version.cuda + " but no GPU visible"
                                                 if torch.version.cuda else "a CPU-only build")
        raise ValueError(f"--device cuda: CUDA is not available on this machine ({build}); use --device cpu")
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def hashable(params: dict) -> dict:
    """YAML lists -> tuples, so dataset params can key the in-process dataset cache."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def dataset_of(arm: Arm):
    """The arm's dataset; with `train_on: holdout` its training images are the held-out slice (data.holdout), the
    complement of what an arm with the same `data` trains on (and no held-out slice is left)."""
    dataset = load_dataset(arm.data.name, **hashable(arm.data.params))
    if arm.train_on == "holdout":
        if getattr(dataset, "holdout_x", None) is None:
            raise ValueError(f"train_on: 'holdout': dataset '{arm.data.name}' has no held-out images")
        dataset = dataclasses.replace(dataset, train_x=dataset.holdout_x, train_y=dataset.holdout_y,
                                      holdout_x=None, holdout_y=None)
    return dataset


def build_model(run: RunSpec) -> torch.nn.Module:
    dataset = dataset_of(run.arm)
    return create_model(run.arm.model.name, dataset.in_shape_at(run.arm.resolution), dataset.num_classes,
                        **run.arm.model.params)


def augment_of(arm: Arm) -> Augment:
    return Augment(arm.jitter_px, arm.crop_pad, arm.hflip, arm.resolution)


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def device_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The kernels that suit the device; the same math, up to float rounding.
    On CUDA a convnet (more than one convolution: a ViT has one, its patch embedding) runs in
    channels_last, which tensor-core convolutions want; inputs follow the weights' layout.
    On CPU timm's attention runs as explicit matmuls + softmax instead of the fused (flash) kernel, whose
    CPU backward was 40% of a ViT-tiny patch-8 step for 17 tokens: 1.8x faster steps (make bench)."""
    if device.type == "cuda" and sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) > 1:
        model.to(memory_format=torch.channels_last)
    if device.type == "cpu":
        for m in model.modules():
            if hasattr(m, "fused_attn"):
                m.fused_attn = False
    return model


@torch.inference_mode()
def predict(model, dataset, arm: Arm, device, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (fp32, on CPU) and labels of a whole split, in large batches."""
    model.eval()
    logits, labels = [], []
    for x, y in dataset.eval_batches(split, augment_of(arm), device):
        with autocast(arm.precision, device):
            logits.append(model(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)
