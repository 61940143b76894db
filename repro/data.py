"""Datasets as in-memory tensors, rooted at $REPRO_DATA (default ./data).

A dataset is loaded once per process (`load_dataset` is cached) and held as float tensors in
[0, 1]; augmentation and normalisation are applied to whole batches as tensor ops, so the hot loop
never touches PIL. Randomness comes only from the generator the training loop passes in.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .registry import DATASETS


class DataMissing(RuntimeError):
    """A dataset is not on disk and could not be downloaded; the message says where it looked."""


@dataclass(frozen=True)
class TensorDataset:
    train_x: torch.Tensor  # float32 in [0, 1], shape (N, C, H, W)
    train_y: torch.Tensor  # int64, shape (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # per channel, applied after augmentation
    std: tuple[float, ...]

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def data_root() -> Path:
    return Path(os.environ.get("REPRO_DATA", "./data"))


# Files each on-disk dataset needs under $REPRO_DATA (either plain or .gz), for a cheap availability check.
REQUIRED_FILES = {
    "mnist": [f"MNIST/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
}


def availability(name: str) -> str | None:
    """None if the dataset is on disk (or needs no disk), else the reason it is not."""
    root = data_root()
    missing = [f for f in REQUIRED_FILES.get(name, [])
               if not (root / f).exists() and not (root / f"{f}.gz").exists()]
    if missing:
        return f"dataset '{name}' not found: {root.resolve()} lacks {', '.join(missing)} (set REPRO_DATA)"
    return None


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, **params) -> TensorDataset:
    return DATASETS.get(name)(**params)


def jitter(x: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer (dx, dy), filling with 0, as torchvision's
    RandomAffine(0, translate=(max_px/W, max_px/H)) does: offsets are uniform in [-max_px, max_px]
    and rounded. One gather for the whole batch."""
    if max_px == 0:
        return x
    n, _, h, w = x.shape
    shifts = torch.empty(n, 2).uniform_(-max_px, max_px, generator=generator).round().long()
    padded = torch.nn.functional.pad(x, (max_px, max_px, max_px, max_px))
    # Output pixel (r, c) reads padded pixel (r + max_px - dy, c + max_px - dx).
    rows = torch.arange(h).view(1, h) + max_px - shifts[:, 1:2]
    cols = torch.arange(w).view(1, w) + max_px - shifts[:, 0:1]
    batch = torch.arange(n).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


@DATASETS.register("mnist")
def mnist() -> TensorDataset:
    import torchvision

    root = data_root()
    splits = []
    for train in (True, False):
        try:
            ds = torchvision.datasets.MNIST(root, train=train, download=False)
        except RuntimeError:
            try:  # online: fetch it as torchvision does
                ds = torchvision.datasets.MNIST(root, train=train, download=True)
            except Exception as err:
                raise DataMissing(
                    f"MNIST not found in {root.resolve()}/MNIST/raw/ and could not be downloaded "
                    f"({type(err).__name__}). Expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (or their .gz) there; "
                    "set REPRO_DATA to the folder that holds MNIST/."
                ) from None
        splits += [ds.data.unsqueeze(1).float() / 255.0, ds.targets.long()]
    # Normalize((0.5,), (0.5,)) as in the sources' transforms.
    return TensorDataset(*splits, num_classes=10, mean=(0.5,), std=(0.5,))


@DATASETS.register("synthetic")
def synthetic(n_train: int = 512, n_test: int = 256, num_classes: int = 10,
              shape: tuple[int, ...] = (1, 28, 28), noise: float = 0.35, seed: int = 0) -> TensorDataset:
    """Class prototypes plus noise: learnable in a few steps, not trivially. Fixed by `seed`,
    independent of the run seed (the data is the same for every run; order and init vary)."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, *shape, generator=g)

    def sample(n):
        y = torch.randint(num_classes, (n,), generator=g)
        x = prototypes[y] + noise * torch.randn(n, *shape, generator=g)
        return x.clamp(0, 1), y

    return TensorDataset(*sample(n_train), *sample(n_test), num_classes=num_classes,
                         mean=(0.5,) * shape[0], std=(0.5,) * shape[0])
