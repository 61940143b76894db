"""Datasets rooted at $REPRO_DATA (default ./data), served as batches to the training loop.

MNIST and CIFAR-10 fit in memory: they are held as uint8 tensors and every batch is converted,
augmented (jitter, random crop, flip, resize) and normalised as whole-batch tensor ops, so the hot
loop never touches PIL. The hymenoptera set is an ImageFolder with the source's PIL transforms (244
images: the network, not the loader, is the cost). Every random draw comes from the generator the
training loop passes in, so the run's seed fixes data order and augmentation.
"""
from __future__ import annotations

import functools
import gzip
import io
import math
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from .registry import DATASETS, Examples, NonNegative, Pixels, Positive, limited
from .spec import clip, read_regular

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DataMissing(RuntimeError):
    """A dataset is not on disk and could not be downloaded; the message says where it looked."""


class DataDamaged(DataMissing):
    """A dataset file is on disk but is not what it should be; the message names it and says what is wrong."""


def data_root() -> Path:
    return Path(os.environ.get("REPRO_DATA", "./data"))


def shown(relative: str | Path) -> str:
    """A dataset path as reports show it: relative to $REPRO_DATA, never this machine's absolute path."""
    return f"$REPRO_DATA/{relative}"


def root_missing() -> str | None:
    """Why $REPRO_DATA cannot hold any dataset (it is not a folder), or None. It is never created."""
    if not data_root().is_dir():
        return ("the data folder $REPRO_DATA does not exist (set REPRO_DATA to the folder that holds MNIST/, "
                "cifar-10-batches-py/ and hymenoptera_data/)")
    return None


# MNIST's idx files: (magic number, shape) of each; the magic says ubyte data and the number of dims.
MNIST_FILES = {"train-images-idx3-ubyte": (2051, (60000, 28, 28)), "train-labels-idx1-ubyte": (2049, (60000,)),
               "t10k-images-idx3-ubyte": (2051, (10000, 28, 28)), "t10k-labels-idx1-ubyte": (2049, (10000,))}


def check_idx(folder: Path, name: str, label: str = "MNIST") -> None:
    """Raise DataDamaged unless <label>/raw/<name> (or its .gz) has the right header and length."""
    magic, shape = MNIST_FILES[name]
    path = folder / name if (folder / name).exists() else folder / f"{name}.gz"
    where = shown(path.relative_to(data_root()))
    try:  # a regular file of bounded size: a named pipe or /dev/zero is refused before it is read
        if path.suffix == ".gz":
            data = gzip.decompress(read_regular(path, MAX_DATA_BYTES))
            head, size = data[:16], len(data)
        else:
            data = read_regular(path, MAX_DATA_BYTES)
            head, size = data[:16], len(data)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataDamaged(f"{where}: damaged {label} file (not readable: "
                          f"{err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__})") from None
    header = [int.from_bytes(head[i: i + 4], "big") for i in range(0, 4 * (1 + len(shape)), 4)]
    if size < 4 or header[0] != magic:
        found = f"magic number {header[0]}" if size >= 4 else f"{size} bytes"
        raise DataDamaged(f"{where}: damaged {label} file: {found}, expected an idx file with magic number {magic} "
                          f"({'images' if magic == 2051 else 'labels'}; are the files swapped?)")
    want = 4 * (1 + len(shape)) + math.prod(shape)
    if tuple(header[1:]) != shape or size != want:
        raise DataDamaged(f"{where}: damaged {label} file: {size} bytes with header {header[1:]}, expected "
                          f"{want} bytes holding {list(shape)} (truncated?)")


# Files each on-disk dataset needs under $REPRO_DATA (plain or .gz), for a cheap availability check.
REQUIRED_FILES = {
    "mnist": [f"MNIST/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
    "cifar10": [f"cifar-10-batches-py/{f}" for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]],
    "fashion_mnist": [f"FashionMNIST/raw/{f}" for f in MNIST_FILES],
    "kmnist": [f"KMNIST/raw/{f}" for f in MNIST_FILES],
    "cifar100": ["cifar-100-python/train", "cifar-100-python/test"],
    "svhn": ["SVHN/train_32x32.mat", "SVHN/test_32x32.mat"],
    "hymenoptera": ["hymenoptera_data/train/ants", "hymenoptera_data/train/bees",
                    "hymenoptera_data/val/ants", "hymenoptera_data/val/bees"],
}


def availability(name: str) -> str | None:
    """None if the dataset is on disk (or needs no disk), else the reason it is not."""
    root = data_root()
    if name in REQUIRED_FILES and root_missing():
        return f"dataset '{name}' not found: {root_missing()}"
    missing = [f for f in REQUIRED_FILES.get(name, [])
               if not (root / f).exists() and not (root / f"{f}.gz").exists()]
    if missing:
        return f"dataset '{name}' not found: $REPRO_DATA lacks {', '.join(missing)} (set REPRO_DATA)"
    return None


@dataclass(frozen=True)
class Augment:
    """Batch augmentation, from the arm's spec. Applied in this order, all as tensor ops."""

    jitter_px: int = 0        # integer translation, as RandomAffine(0, translate) (MNIST, Hinton)
    crop_pad: int = 0         # random crop after zero padding (CIFAR: 4)
    hflip: bool = False
    resolution: int | None = None  # resize to this side (ViT at 224); train and test alike


@dataclass(frozen=True)
class TensorDataset:
    """Images as uint8 (N, C, H, W) and labels; `train_keep` selects the transfer set."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    holdout_x: torch.Tensor | None = None  # training images kept out of the transfer set (bias tuning)
    holdout_y: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def in_shape_at(self, resolution: int | None) -> tuple[int, ...]:
        c, h, w = self.in_shape
        return (c, resolution, resolution) if resolution else (c, h, w)

    def prepare(self, x: torch.Tensor, augment: Augment, generator: torch.Generator | None,
                draws: dict | None = None) -> torch.Tensor:
        """uint8 batch -> float, augmented (when a generator, or that batch's `draws`, is given) and normalised."""
        x = x.float() / 255.0
        if generator is not None or draws is not None:
            draws = draw_augment(augment, len(x), generator) if draws is None else draws
            x = shift_crop_draw(x, augment.jitter_px, draws.get("jitter"), jittered=True)
            x = shift_crop_draw(x, augment.crop_pad, draws.get("crop"), jittered=False)
            if augment.hflip:
                x = torch.where(draws["flip"].view(-1, 1, 1, 1).to(x.device), x.flip(3), x)
        if augment.resolution and augment.resolution != x.shape[-1]:
            x = F.interpolate(x, size=augment.resolution, mode="bilinear", align_corners=False, antialias=True)
        return (x - channel_stat(self.mean, x.device)) / channel_stat(self.std, x.device)

    def train_batches(self, batch_size: int, augment: Augment, generator: torch.Generator, device):
        """(images, labels, indices into the training set) per batch, in a seeded random order.
        On a sync-free device (a GPU) the images live there and the epoch's random numbers are drawn up front
        in the same order and sent over in one copy: no step waits on the host, and the data order and
        augmentation are the ones the per-batch path draws (tests/test_data.py)."""
        perm = torch.randperm(len(self.train_y), generator=generator)
        starts = range(0, len(perm), batch_size)
        if not sync_free(device):
            for i in starts:
                idx = perm[i: i + batch_size]
                yield self.prepare(self.train_x[idx].to(device), augment, generator), self.train_y[idx].to(device), idx
            return
        per_batch = [draw_augment(augment, len(perm[i: i + batch_size]), generator) for i in starts]
        draws = {k: to_device(torch.cat([d[k] for d in per_batch]), device) for k in per_batch[0]} if per_batch else {}
        perm, x, y = to_device(perm, device), resident(self.train_x, device), resident(self.train_y, device)
        for i in starts:
            idx = perm[i: i + batch_size]
            yield self.prepare(x[idx], augment, None, {k: v[i: i + batch_size] for k, v in draws.items()}), y[idx], idx

    def eval_batches(self, split: str, augment: Augment, device, batch_size: int = 4096):
        x, y = {"test": (self.test_x, self.test_y), "holdout": (self.holdout_x, self.holdout_y),
                "train": (self.train_x, self.train_y)}[split]
        if sync_free(device):
            x, y = resident(x, device), resident(y, device)
        for i in range(0, len(y), batch_size):
            yield self.prepare(x[i: i + batch_size].to(device), augment, None), y[i: i + batch_size].to(device)


# Device types whose training loop keeps data, random numbers and running sums on the device and reads them
# back once per epoch: there a step that reads a number back (float(), int(), a host-to-device copy from
# pageable memory) waits for every queued kernel. On the CPU reading a number costs nothing, and the
# per-step path is the one every stored result was trained with. (Tests add "cpu" to check the two agree.)
SYNC_FREE = {"cuda"}


def sync_free(device) -> bool:
    return torch.device(device).type in SYNC_FREE


@functools.lru_cache(maxsize=8)
def resident(tensor: torch.Tensor, device) -> torch.Tensor:
    """A dataset tensor's copy on the device, made once per process (keyed by the tensor's identity)."""
    return to_device(tensor, device)


def to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """A copy that does not make the host wait: from pinned memory, without blocking, on a GPU."""
    if torch.device(device).type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@functools.lru_cache(maxsize=16)
def channel_stat(values: tuple[float, ...], device) -> torch.Tensor:
    """Per-channel mean or std as a (1, C, 1, 1) tensor, built once per device instead of copied every batch."""
    return torch.tensor(values, device=device).view(1, -1, 1, 1)


def draw_augment(augment: Augment, n: int, generator: torch.Generator) -> dict:
    """The random numbers one batch's augmentation uses, drawn from the run's generator in a fixed order
    (jitter, crop, flip) and only for the augmentations the arm has."""
    draws = {}
    if augment.jitter_px:  # uniform in [-max_px, max_px], rounded: torchvision's RandomAffine(0, translate)
        draws["jitter"] = torch.empty(n, 2).uniform_(-augment.jitter_px, augment.jitter_px,
                                                     generator=generator).round().long()
    if augment.crop_pad:  # RandomCrop(size, padding=pad): a uniform integer offset in [0, 2 pad]
        draws["crop"] = torch.randint(0, 2 * augment.crop_pad + 1, (n, 2), generator=generator)
    if augment.hflip:
        draws["flip"] = torch.rand(n, generator=generator) < 0.5
    return draws


def shift_crop_draw(x: torch.Tensor, pad: int, drawn: torch.Tensor | None, jittered: bool) -> torch.Tensor:
    """Jitter (drawn shifts) or random crop (drawn offsets) of a batch; nothing when pad is 0."""
    if pad == 0:
        return x
    drawn = drawn.to(x.device)
    if jittered:  # output pixel (r, c) reads padded pixel (r + max_px - dy, c + max_px - dx)
        return shift_crop(x, pad, pad - drawn[:, 1], pad - drawn[:, 0])
    return shift_crop(x, pad, drawn[:, 0], drawn[:, 1])


def shift_crop(x: torch.Tensor, pad: int, row_offsets: torch.Tensor, col_offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad each image by `pad` and cut the original size at per-image offsets in [0, 2 pad]:
    a translation of every image of the batch as one gather over flattened pixels (3-5x faster
    than 3-tensor advanced indexing)."""
    n, c, h, w = x.shape
    padded_w = w + 2 * pad
    padded = F.pad(x, (pad, pad, pad, pad)).reshape(n, c, -1)
    window = (torch.arange(h, device=x.device).view(h, 1) * padded_w + torch.arange(w, device=x.device)).view(1, -1)
    flat = window + (row_offsets * padded_w + col_offsets).view(n, 1)
    return padded.gather(2, flat.view(n, 1, -1).expand(n, c, -1)).view(n, c, h, w)


def jitter(x: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by an integer (dx, dy), filling with 0, as torchvision's
    RandomAffine(0, translate=(max_px/W, max_px/H)) does: offsets are uniform in [-max_px, max_px] and rounded."""
    if max_px == 0:
        return x
    return shift_crop_draw(x, max_px, draw_augment(Augment(jitter_px=max_px), len(x), generator)["jitter"], True)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding=pad): a uniform integer offset in [0, 2 pad] per image."""
    if pad == 0:
        return x
    return shift_crop_draw(x, pad, draw_augment(Augment(crop_pad=pad), len(x), generator)["crop"], False)


def select(x, y, omit_classes=(), keep_classes=()):
    mask = torch.ones(len(y), dtype=torch.bool)
    if keep_classes:
        mask &= torch.isin(y, torch.tensor(keep_classes))
    if omit_classes:
        mask &= ~torch.isin(y, torch.tensor(omit_classes))
    return x[mask], y[mask]


def split_holdout(x, y, holdout: int):
    """The last `holdout` images of a fixed permutation (the same for every seed: data is part of the spec)."""
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    keep, held = perm[: len(y) - holdout], perm[len(y) - holdout:]
    return (x[keep], y[keep]), (x[held], y[held])


# Parameter types of the dataset builders (spec validation; see registry.py).
Digit = Annotated[int, Field(ge=0, le=9)]     # a class of MNIST / CIFAR-10
Class = Annotated[int, Field(ge=0)]
Held = Annotated[int, Field(ge=0), limited("examples")]
Finite01 = Annotated[float, Field(ge=0, le=1)]


@functools.lru_cache(maxsize=4)
def load_dataset(name: str, **params):
    """Loaded once per process per (name, params): runs of one plan share it."""
    return DATASETS.get(name)(**params)


def tensor_dataset(train, test, num_classes, mean, std, omit_classes, keep_classes, holdout, train_subset) -> TensorDataset:
    """Common transfer-set options: a held-out slice of the training set, classes omitted or kept, a subset."""
    if holdout >= len(train[1]):
        raise DataMissing(f"holdout {holdout} leaves no training images (the training set has {len(train[1])})")
    (train_x, train_y), held = split_holdout(*train, holdout) if holdout else (train, (None, None))
    train_x, train_y = select(train_x, train_y, tuple(omit_classes), tuple(keep_classes))
    if train_subset and train_subset < len(train_y):
        keep = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))[:train_subset]
        train_x, train_y = train_x[keep], train_y[keep]
    if len(train_y) == 0 or len(test[1]) == 0:
        raise DataMissing(f"the {'training' if len(train_y) == 0 else 'test'} set is empty after omit_classes/"
                          f"keep_classes {list(omit_classes)}/{list(keep_classes)}: nothing to train or test on")
    return TensorDataset(train_x, train_y, *test, num_classes=num_classes, mean=tuple(mean), std=tuple(std),
                         holdout_x=held[0], holdout_y=held[1])


def idx_dataset(folder: str, mean, std, omit_classes, keep_classes, holdout, train_subset, test_subset) -> TensorDataset:
    """MNIST and the datasets in its idx layout (FashionMNIST, KMNIST): `$REPRO_DATA/<folder>/raw/*`, read by
    the torchvision class of that name (downloaded as torchvision does where a network exists)."""
    import torchvision

    root, splits = data_root(), []
    if root_missing():
        raise DataMissing(f"{folder} not found: {root_missing()}")
    raw = root / folder / "raw"
    for name in MNIST_FILES:  # files that are there must be whole: damage is named, not "not found"
        if (raw / name).exists() or (raw / f"{name}.gz").exists():
            check_idx(raw, name, folder)
    for train in (True, False):
        try:
            ds = getattr(torchvision.datasets, folder)(root, train=train, download=False)
        except RuntimeError:
            try:  # online: fetch it as torchvision does
                ds = getattr(torchvision.datasets, folder)(root, train=train, download=True)
            except Exception as err:
                raise DataMissing(
                    f"{folder} not found in {shown(f'{folder}/raw/')} and could not be downloaded "
                    f"({type(err).__name__}). Expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (or their .gz) there; "
                    f"set REPRO_DATA to the folder that holds {folder}/."
                ) from None
        splits.append((ds.data.unsqueeze(1), ds.targets.long()))
    if test_subset:  # the first test_subset test images (as cifar10): cheaper evaluation every epoch
        splits[1] = (splits[1][0][:test_subset], splits[1][1][:test_subset])
    return tensor_dataset(*splits, 10, mean, std, omit_classes, keep_classes, holdout, train_subset)


@DATASETS.register("mnist")
def mnist(mean: Sequence[Finite01] = (0.5,), std: Sequence[Positive] = (0.5,), omit_classes: Sequence[Digit] = (),
          keep_classes: Sequence[Digit] = (), holdout: Held = 0, train_subset: Optional[Examples] = None,
          test_subset: Optional[Examples] = None) -> TensorDataset:
    """MNIST; default normalisation is the sources' Normalize((0.5,), (0.5,)). `test_subset`: score only the
    first N test images (an epoch's evaluation of all 10000 can dominate a small net's epoch on a CPU)."""
    return idx_dataset("MNIST", mean, std, omit_classes, keep_classes, holdout, train_subset, test_subset)


mnist.num_classes, mnist.n_train, mnist.n_test = 10, 60000, 10000  # what spec validation checks classes against


@DATASETS.register("fashion_mnist")
def fashion_mnist(mean: Sequence[Finite01] = (0.5,), std: Sequence[Positive] = (0.5,),
                  omit_classes: Sequence[Digit] = (), keep_classes: Sequence[Digit] = (), holdout: Held = 0,
                  train_subset: Optional[Examples] = None, test_subset: Optional[Examples] = None) -> TensorDataset:
    """FashionMNIST (Xiao et al. 2017) in torchvision's layout, `$REPRO_DATA/FashionMNIST/raw/` (MNIST's
    idx files and sizes: 60000 + 10000 28x28 images, 10 classes)."""
    return idx_dataset("FashionMNIST", mean, std, omit_classes, keep_classes, holdout, train_subset, test_subset)


fashion_mnist.num_classes, fashion_mnist.n_train, fashion_mnist.n_test = 10, 60000, 10000


@DATASETS.register("kmnist")
def kmnist(mean: Sequence[Finite01] = (0.5,), std: Sequence[Positive] = (0.5,),
           omit_classes: Sequence[Digit] = (), keep_classes: Sequence[Digit] = (), holdout: Held = 0,
           train_subset: Optional[Examples] = None, test_subset: Optional[Examples] = None) -> TensorDataset:
    """Kuzushiji-MNIST in torchvision's layout, `$REPRO_DATA/KMNIST/raw/` (MNIST's idx files and sizes)."""
    return idx_dataset("KMNIST", mean, std, omit_classes, keep_classes, holdout, train_subset, test_subset)


kmnist.num_classes, kmnist.n_train, kmnist.n_test = 10, 60000, 10000


@DATASETS.register("cifar10")
def cifar10(omit_classes: Sequence[Digit] = (), keep_classes: Sequence[Digit] = (), holdout: Held = 0,
            train_subset: Optional[Examples] = None, test_subset: Optional[Examples] = None) -> TensorDataset:
    """CIFAR-10 read from the python pickle batches directly (torchvision's md5 check rejects the
    local copy, whose pixels are exact but whose `filenames` field differs)."""
    folder = data_root() / "cifar-10-batches-py"
    if root_missing():
        raise DataMissing(f"CIFAR-10 not found: {root_missing()}")
    if availability("cifar10"):
        raise DataMissing(f"CIFAR-10 not found: expected data_batch_1..5 and test_batch (python pickle "
                          f"batches) in {shown('cifar-10-batches-py/')}; set REPRO_DATA to the folder that holds "
                          "cifar-10-batches-py/.")

    def read(names):
        xs, ys = [], []
        for name in names:
            try:
                batch = pickle.loads(read_regular(folder / name, MAX_DATA_BYTES), encoding="latin1")
                data, labels = batch["data"], batch["labels"]
                if getattr(data, "shape", None) is None or data.shape[1:] != (3072,) or len(labels) != len(data):
                    raise ValueError(f"data of shape {getattr(data, 'shape', '?')} and {len(labels)} labels, "
                                     "expected (N, 3072) and N")
            except Exception as err:  # truncated, not a pickle, or another pickle
                raise DataDamaged(f"{shown(f'cifar-10-batches-py/{name}')}: damaged CIFAR-10 batch "
                                  f"({type(err).__name__}: {str(err)[:100]})") from None
            xs.append(torch.as_tensor(data).view(-1, 3, 32, 32))
            ys.append(torch.as_tensor(labels))
        return torch.cat(xs), torch.cat(ys).long()

    test_x, test_y = read(["test_batch"])
    if test_subset:
        test_x, test_y = test_x[:test_subset], test_y[:test_subset]
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    return tensor_dataset(read([f"data_batch_{i}" for i in range(1, 6)]), (test_x, test_y), 10, mean, std,
                          omit_classes, keep_classes, holdout, train_subset)


cifar10.num_classes, cifar10.n_train, cifar10.n_test = 10, 50000, 10000


def fetched(name: str, download) -> None:
    """Where the files of `name` are missing, download them as torchvision does (`download()`); offline, a
    DataMissing naming the files looked for. Never a half-written dataset: torchvision writes then checks."""
    if availability(name) is None:
        return
    try:
        download()
    except Exception as err:  # offline, or the server refused
        raise DataMissing(f"{availability(name)}, and it could not be downloaded ({type(err).__name__}); "
                          "put torchvision's files there, or run once where a network exists") from None
    if availability(name):
        raise DataMissing(availability(name))


def read_pickle(path: Path, label: str) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as err:  # truncated, not a pickle
        raise DataDamaged(f"{shown(path.relative_to(data_root()))}: damaged {label} file "
                          f"({type(err).__name__}: {str(err)[:100]})") from None


@DATASETS.register("cifar100")
def cifar100(labels: Literal["fine", "coarse"] = "fine", holdout: Held = 0, train_subset: Optional[Examples] = None,
             test_subset: Optional[Examples] = None) -> TensorDataset:
    """CIFAR-100 from torchvision's python pickles, `$REPRO_DATA/cifar-100-python/{train,test}` (read directly,
    as cifar10 is); `labels`: the 100 fine classes or the 20 coarse superclasses."""
    import torchvision
    if root_missing():
        raise DataMissing(f"CIFAR-100 not found: {root_missing()}")
    fetched("cifar100", lambda: torchvision.datasets.CIFAR100(data_root(), download=True))

    def read(split):
        batch = read_pickle(data_root() / "cifar-100-python" / split, "CIFAR-100")
        data, y = batch.get("data"), batch.get(f"{labels}_labels")
        if getattr(data, "shape", None) is None or data.shape[1:] != (3072,) or y is None or len(y) != len(data):
            raise DataDamaged(f"{shown(f'cifar-100-python/{split}')}: damaged CIFAR-100 file (expected data of "
                              f"shape (N, 3072) and N {labels}_labels)")
        return torch.as_tensor(data).view(-1, 3, 32, 32), torch.as_tensor(y).long()

    test_x, test_y = read("test")
    if test_subset:
        test_x, test_y = test_x[:test_subset], test_y[:test_subset]
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    return tensor_dataset(read("train"), (test_x, test_y), 100 if labels == "fine" else 20, mean, std,
                          (), (), holdout, train_subset)


@DATASETS.register("svhn")
def svhn(holdout: Held = 0, train_subset: Optional[Examples] = None,
         test_subset: Optional[Examples] = None) -> TensorDataset:
    """SVHN (cropped digits) from torchvision's files, `$REPRO_DATA/SVHN/{train,test}_32x32.mat` (read with
    scipy.io, label 10 as digit 0, as torchvision does); the `extra` split is not used."""
    import torchvision
    if root_missing():
        raise DataMissing(f"SVHN not found: {root_missing()}")
    folder = data_root() / "SVHN"
    fetched("svhn", lambda: [torchvision.datasets.SVHN(folder, split=s, download=True) for s in ("train", "test")])

    def read(split):
        import scipy.io
        path = folder / f"{split}_32x32.mat"
        try:
            mat = scipy.io.loadmat(path)
            x, y = mat["X"], mat["y"]
            if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or len(y) != x.shape[3]:
                raise ValueError(f"X of shape {x.shape} and {len(y)} labels, expected (32, 32, 3, N) and N")
        except Exception as err:
            raise DataDamaged(f"{shown(f'SVHN/{split}_32x32.mat')}: damaged SVHN file ({type(err).__name__}: "
                              f"{str(err)[:100]})") from None
        labels = torch.as_tensor(y.reshape(-1).astype("int64")) % 10  # torchvision: 10 -> 0
        return torch.as_tensor(x).permute(3, 2, 0, 1).contiguous(), labels

    test_x, test_y = read("test")
    if test_subset:
        test_x, test_y = test_x[:test_subset], test_y[:test_subset]
    mean, std = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
    return tensor_dataset(read("train"), (test_x, test_y), 10, mean, std, (), (), holdout, train_subset)


@DATASETS.register("synthetic")
def synthetic(n_train: Examples = 512, n_test: Examples = 256, num_classes: Annotated[int, Field(ge=2, le=1000)] = 10,
              shape: Annotated[Sequence[Pixels], Field(min_length=3, max_length=3)] = (1, 28, 28),
              noise: NonNegative = 0.35, seed: Annotated[int, Field(ge=0, lt=2 ** 31)] = 0, omit_classes: Sequence[Class] = (),
              keep_classes: Sequence[Class] = (), holdout: Held = 0) -> TensorDataset:
    """Class prototypes plus noise, quantised to uint8 like real images. Fixed by `seed`,
    independent of the run seed (the data is the same for every run; order and init vary)."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, *shape, generator=g)

    def sample(n):
        y = torch.randint(num_classes, (n,), generator=g)
        x = prototypes[y] + noise * torch.randn(n, *shape, generator=g)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    return tensor_dataset(sample(n_train), sample(n_test), num_classes, (0.5,) * shape[0], (0.5,) * shape[0],
                          omit_classes, keep_classes, holdout, None)


@dataclass(frozen=True)
class FolderDataset:
    """An ImageFolder (hymenoptera) with PIL transforms; batches come from a DataLoader in this process."""

    train: object
    test: object
    num_classes: int
    resolution: int
    holdout_x = None

    def in_shape_at(self, resolution):
        return (3, self.resolution, self.resolution)

    def train_batches(self, batch_size, augment, generator, device):
        # torchvision's random transforms draw from the global RNG, which the loop seeded with the run's seed
        loader = torch.utils.data.DataLoader(self.train, batch_size=batch_size, shuffle=True, generator=generator)
        for x, y in loader:
            yield x.to(device), y.to(device), None

    def eval_batches(self, split, augment, device, batch_size=64):
        for x, y in torch.utils.data.DataLoader(self.test, batch_size=batch_size):
            yield x.to(device), y.to(device)


MAX_DATA_BYTES = 1 << 30     # one dataset file (CIFAR-10's batches are 31 MB, MNIST's images 47 MB)
MAX_IMAGE_BYTES = 64 << 20   # one image file
MAX_IMAGE_SIDE = 4096        # pixels: a 17 kB PNG can claim 12000 x 12000 and decode to 400 MB every epoch


def image_files(root: Path) -> list[Path]:
    """The files ImageFolder would read under `root`, found without following links blindly: a symlinked folder
    that leads back up (a loop: ImageFolder walks it over and over, multiplying the training set) or out of
    the dataset folder, or a file linked from outside it, raises DataDamaged naming the link (relative to
    $REPRO_DATA; never its target)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS
    real, files = root.resolve(), []
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in sorted(dirs) + sorted(names):
            path = Path(folder) / name
            if path.is_symlink():
                target = path.resolve()
                where = shown(path.relative_to(data_root()))
                if path.is_dir() and path.parent.resolve().is_relative_to(target):
                    raise DataDamaged(f"{where}: a symlink loop (the folder links back to one that holds it); its "
                                      "images would be read again and again")
                if not target.is_relative_to(real):
                    raise DataDamaged(f"{where}: a symlink out of the dataset folder {shown(root.relative_to(data_root()))}; "
                                      "copy the images in instead")
                if path.is_dir():
                    raise DataDamaged(f"{where}: a symlink to another folder of the dataset; its images would "
                                      "count twice")
            if name in names and name.lower().endswith(IMG_EXTENSIONS):
                files.append(path)
    return sorted(files)


def check_images(root: Path) -> None:
    """Raise DataDamaged naming the first image file that is not a regular file of bounded size and side, or
    that PIL cannot read (it would otherwise fail, or hang on a pipe, mid-training)."""
    from PIL import Image, UnidentifiedImageError
    for path in image_files(root):
        where = shown(path.relative_to(data_root()))
        try:
            data = read_regular(path, MAX_IMAGE_BYTES)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the side is checked below
                image = Image.open(io.BytesIO(data))
            with image:
                if max(image.size) > MAX_IMAGE_SIDE:
                    raise DataDamaged(f"{where}: {image.size[0]} x {image.size[1]} pixels, over the {MAX_IMAGE_SIDE} "
                                      "a side an image may have here (a decompression bomb?)")
                image.verify()
        except DataDamaged:
            raise
        except Exception as err:  # truncated, not an image, unsupported, a pipe, a device
            why = err.strerror if isinstance(err, OSError) and err.strerror else \
                "UnidentifiedImageError: not an image file PIL can read" if isinstance(err, UnidentifiedImageError) \
                else f"{type(err).__name__}: {clip(str(err).replace(str(path), 'the file'), 80)}"
            raise DataDamaged(f"{where}: damaged image ({why})") from None


@DATASETS.register("hymenoptera")
def hymenoptera(resolution: Pixels = 224) -> FolderDataset:
    """The source's transforms: RandomResizedCrop + flip for train, Resize(256/224 of the side) +
    CenterCrop for val, ImageNet normalisation; `resolution` < 224 scales both for CPU profiles."""
    from torchvision import datasets, transforms as T

    if availability("hymenoptera"):
        raise DataMissing(availability("hymenoptera") + "; expected hymenoptera_data/{train,val}/{ants,bees}/*.jpg")
    root = data_root() / "hymenoptera_data"
    check_images(root)
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = datasets.ImageFolder(root / "train", T.Compose([
        T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.ToTensor(), normalize]))
    val = datasets.ImageFolder(root / "val", T.Compose([
        T.Resize(round(resolution * 256 / 224)), T.CenterCrop(resolution), T.ToTensor(), normalize]))
    return FolderDataset(train, val, num_classes=2, resolution=resolution)


hymenoptera.num_classes = 2
