"""Datasets and batched augmentation."""
from __future__ import annotations

import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.data import MNIST_FILES, DataDamaged, DataMissing, availability, cifar10, jitter, load_dataset, mnist


def test_jitter_is_an_integer_translation_within_max_px_filled_with_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0  # one bright pixel: where it lands is the shift
    out = jitter(x, 2, g)
    assert out.shape == x.shape and torch.allclose(out.sum((1, 2, 3)), torch.ones(64))
    rows, cols = (out[:, 0] == 1).nonzero()[:, 1], (out[:, 0] == 1).nonzero()[:, 2]
    assert (rows - 14).abs().max() <= 2 and (cols - 14).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # it really varies per image


def test_jitter_agrees_with_torchvision_random_affine_for_the_same_shift():
    import torchvision.transforms.functional as TF
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 28, 28)
    shifts = torch.empty(8, 2).uniform_(-2, 2, generator=torch.Generator().manual_seed(3)).round().long()
    out = jitter(x, 2, g)
    for i in range(8):
        ref = TF.affine(x[i], angle=0.0, translate=shifts[i].tolist(), scale=1.0, shear=[0.0])
        torch.testing.assert_close(out[i], ref)


def test_jitter_zero_is_identity():
    x = torch.rand(4, 1, 28, 28)
    assert jitter(x, 0, torch.Generator()) is x


def test_missing_mnist_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])  # offline, fast
    assert "MNIST/raw/train-images-idx3-ubyte" in availability("mnist")
    with pytest.raises(DataMissing, match=r"MNIST not found in \$REPRO_DATA/MNIST/raw/.*set REPRO_DATA") as err:
        mnist()
    assert str(tmp_path) not in str(err.value)  # reports show no local absolute path


def test_synthetic_is_fixed_by_its_own_seed():
    a, b = load_dataset("synthetic", n_train=32, n_test=16), load_dataset("synthetic", n_train=32, n_test=16, seed=1)
    assert torch.equal(a.train_x, load_dataset("synthetic", n_train=32, n_test=16).train_x)
    assert not torch.equal(a.train_x, b.train_x)


def test_random_crop_agrees_with_torchvision_pad_then_crop():
    import torchvision.transforms.functional as TF
    from repro.data import random_crop
    x = torch.rand(6, 3, 32, 32)
    out = random_crop(x, 4, torch.Generator().manual_seed(5))
    offsets = torch.randint(0, 9, (6, 2), generator=torch.Generator().manual_seed(5))
    for i in range(6):
        top, left = offsets[i].tolist()
        torch.testing.assert_close(out[i], TF.crop(TF.pad(x[i], 4), top, left, 32, 32))


@pytest.mark.skipif(availability("hymenoptera") is not None, reason="needs REPRO_DATA with hymenoptera_data/ (CI sets ../shared/data)")
def test_hymenoptera_folder_with_the_source_transforms():
    data = load_dataset("hymenoptera", resolution=64)
    assert (len(data.train), len(data.test)) == (244, 153)  # ImageFolder skips the .gif, as in the source
    x, y, idx = next(data.train_batches(8, None, torch.Generator().manual_seed(0), "cpu"))
    assert x.shape == (8, 3, 64, 64) and idx is None and set(y.tolist()) <= {0, 1}
    x, y = next(data.eval_batches("test", None, "cpu"))
    assert x.shape[1:] == (3, 64, 64)


def idx_file(magic: int, shape: tuple[int, ...], fill: int | None = None) -> bytes:
    """An MNIST idx file: header, then (by default) every byte the shape needs; `fill` bytes instead."""
    body = bytes(math.prod(shape) if fill is None else fill)
    return b"".join(n.to_bytes(4, "big") for n in (magic, *shape)) + body


def mnist_folder(root, **replace) -> Path:
    """$REPRO_DATA/MNIST/raw with four whole idx files, some replaced by the given bytes (name -> bytes)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, (magic, shape) in MNIST_FILES.items():
        (raw / name).write_bytes(replace.get(name.replace("-", "_"), idx_file(magic, shape)))
    return raw


@pytest.mark.parametrize("damage,expected", [
    ({"train_images_idx3_ubyte": b""}, "$REPRO_DATA/MNIST/raw/train-images-idx3-ubyte: damaged MNIST file: 0 bytes, "
     "expected an idx file with magic number 2051 (images; are the files swapped?)"),
    ({"t10k_labels_idx1_ubyte": idx_file(2049, (10000,), fill=5000)}, "$REPRO_DATA/MNIST/raw/t10k-labels-idx1-ubyte: "
     "damaged MNIST file: 5008 bytes with header [10000], expected 10008 bytes holding [10000] (truncated?)"),
    ({"train_images_idx3_ubyte": idx_file(2049, (60000,)), "train_labels_idx1_ubyte": idx_file(2051, (60000, 28, 28))},
     "$REPRO_DATA/MNIST/raw/train-images-idx3-ubyte: damaged MNIST file: magic number 2049, expected an idx file "
     "with magic number 2051 (images; are the files swapped?)"),
    ({"t10k_images_idx3_ubyte": idx_file(2051, (10000, 28, 27))}, "$REPRO_DATA/MNIST/raw/t10k-images-idx3-ubyte: "
     "damaged MNIST file: 7560016 bytes with header [10000, 28, 27], expected 7840016 bytes holding "
     "[10000, 28, 28] (truncated?)"),
    ({"train_labels_idx1_ubyte": b"garbage!" * 3}, "$REPRO_DATA/MNIST/raw/train-labels-idx1-ubyte: damaged MNIST "
     "file: magic number 1734439522, expected an idx file with magic number 2049 (labels; are the files swapped?)"),
], ids=["zero-bytes", "truncated", "swapped", "wrong-shape", "garbage"])
def test_damaged_mnist_files_are_named_with_what_is_wrong(damage, expected, tmp_path, monkeypatch):
    mnist_folder(tmp_path, **damage)
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    with pytest.raises(DataDamaged) as err:
        mnist()
    assert str(err.value) == expected


def test_a_damaged_gz_mnist_file_is_named(tmp_path, monkeypatch):
    raw = mnist_folder(tmp_path)
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    with pytest.raises(DataDamaged, match=r"^\$REPRO_DATA/MNIST/raw/t10k-images-idx3-ubyte.gz: damaged MNIST file "
                                          r"\(not readable: BadGzipFile\)$"):
        mnist()


def cifar_folder(root, **replace) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    whole = pickle.dumps({"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(replace.get(name, whole))
    return folder


@pytest.mark.parametrize("name,content,expected", [
    ("data_batch_3", b"", "EOFError: Ran out of input"),
    ("test_batch", pickle.dumps({"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 10})[:200],
     "UnpicklingError: pickle data was truncated"),
    ("data_batch_1", b"\x80\x04garbage", "UnpicklingError: "),
    ("data_batch_5", pickle.dumps({"pixels": []}), "KeyError: 'data'"),
    ("data_batch_2", pickle.dumps({"data": np.zeros((10, 1024), np.uint8), "labels": [0] * 10}),
     "ValueError: data of shape (10, 1024) and 10 labels, expected (N, 3072) and N"),
], ids=["empty", "truncated", "garbage", "not-a-batch", "wrong-shape"])
def test_damaged_cifar_batches_are_named_with_what_is_wrong(name, content, expected, tmp_path, monkeypatch):
    cifar_folder(tmp_path, **{name: content})
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    with pytest.raises(DataDamaged) as err:
        cifar10()
    assert str(err.value).startswith(f"$REPRO_DATA/cifar-10-batches-py/{name}: damaged CIFAR-10 batch ({expected}")


def test_a_data_folder_that_does_not_exist_is_not_created(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr("torchvision.datasets.MNIST.mirrors", ["http://127.0.0.1:9/"])
    for name, load in (("mnist", mnist), ("cifar10", cifar10)):
        assert availability(name) == f"dataset '{name}' not found: the data folder $REPRO_DATA does not exist " \
                                     "(set REPRO_DATA to the folder that holds MNIST/, cifar-10-batches-py/ and hymenoptera_data/)"
        with pytest.raises(DataMissing, match="does not exist"):
            load()
    assert not (tmp_path / "nowhere").exists()


def test_a_claim_with_damaged_data_is_not_run_and_the_others_go_on(tmp_path, monkeypatch):
    """One claim's dataset file is damaged: that claim is NOT RUN with the file named, the next trains."""
    import yaml

    from repro.plan import plan
    from repro.run import LocalExecutor
    from repro.spec import load_claim
    from repro.store import Store
    sys.path.insert(0, str(Path(__file__).parent / "bad-inputs"))
    import cases

    mnist_folder(tmp_path / "data", train_labels_idx1_ubyte=b"")
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "data"))
    specs = {"on-mnist": cases.both(cases.edit(id="on-mnist"), lambda d: d["defaults"].update(data={"name": "mnist"})),
             "on-synthetic": cases.edit(id="on-synthetic")}
    claims = []
    for name, spec in specs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cases.build(spec)))
        claims.append(load_claim(tmp_path / f"{name}.yaml"))
    store = Store(tmp_path / "results", tmp_path / "cache")
    summary = LocalExecutor(store, torch.device("cpu"), log=lambda m: None).submit(plan(claims, "smoke", store))
    assert summary["not_runnable"] == {("on-mnist", "default"): "$REPRO_DATA/MNIST/raw/train-labels-idx1-ubyte: "
                                       "damaged MNIST file: 0 bytes, expected an idx file with magic number 2049 "
                                       "(labels; are the files swapped?)"}
    assert summary["counts"]["trained"] == 4 and len(list((tmp_path / "results").rglob("*.json"))) == 4


def test_a_damaged_hymenoptera_image_is_named(tmp_path, monkeypatch):
    from PIL import Image

    from repro.data import hymenoptera
    for split in ("train", "val"):
        for label in ("ants", "bees"):
            folder = tmp_path / "hymenoptera_data" / split / label
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(folder / "whole.jpg")
    (tmp_path / "hymenoptera_data" / "val" / "bees" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    with pytest.raises(DataDamaged, match=r"^\$REPRO_DATA/hymenoptera_data/val/bees/broken.jpg: damaged image "
                                          r"\(UnidentifiedImageError: "):
        hymenoptera()


def test_sync_free_batches_are_the_per_batch_ones_drawn_up_front(monkeypatch):
    """On a GPU the epoch's data order and augmentation draws are made before its first step (one copy to the
    device); they must be the very batches the per-batch path draws from the same generator."""
    import repro.data
    from repro.data import Augment
    data = load_dataset("synthetic", n_train=70, n_test=8, shape=(3, 12, 12))
    augment = Augment(jitter_px=1, crop_pad=2, hflip=True)

    def batches():
        g = torch.Generator().manual_seed(4)
        return [list(data.train_batches(16, augment, g, "cpu")) for _ in range(2)], g.get_state()

    per_batch, state = batches()
    monkeypatch.setattr(repro.data, "SYNC_FREE", {"cpu", "cuda"})
    up_front, state_after = batches()
    assert torch.equal(state, state_after)  # the generator is where the next epoch expects it
    for epoch_a, epoch_b in zip(per_batch, up_front):
        assert len(epoch_a) == len(epoch_b) == 5
        for a, b in zip(epoch_a, epoch_b):
            assert all(torch.equal(u, v) for u, v in zip(a, b))


# --- issue 26: image folders hold plain image files of the dataset, each a readable size ---------------

def image_folder(root: Path) -> Path:
    from PIL import Image
    for split in ("train", "val"):
        for label in ("ants", "bees"):
            folder = root / "hymenoptera_data" / split / label
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(folder / "whole.jpg")
    return root / "hymenoptera_data"


def huge_png(path: Path) -> None:
    from PIL import Image
    Image.new("1", (12000, 12000)).save(path)  # a few kB on disk


IMAGE_DAMAGE = [  # (case, damage under hymenoptera_data/, the line); paths relative to $REPRO_DATA, never a target
    ("empty-bmp", lambda r, out: (r / "train/ants/empty.bmp").write_bytes(b""),
     "$REPRO_DATA/hymenoptera_data/train/ants/empty.bmp: damaged image (UnidentifiedImageError: not an image file "
     "PIL can read)"),
    ("empty-webp", lambda r, out: (r / "val/bees/empty.webp").write_bytes(b""),
     "$REPRO_DATA/hymenoptera_data/val/bees/empty.webp: damaged image (UnidentifiedImageError: not an image file "
     "PIL can read)"),
    ("named-pipe", lambda r, out: os.mkfifo(r / "train/bees/pipe.png"),
     "$REPRO_DATA/hymenoptera_data/train/bees/pipe.png: damaged image (a named pipe, not a regular file)"),
    ("huge-png", lambda r, out: huge_png(r / "train/ants/bomb.png"),
     "$REPRO_DATA/hymenoptera_data/train/ants/bomb.png: 12000 x 12000 pixels, over the 4096 a side an image may "
     "have here (a decompression bomb?)"),
    ("symlink-loop", lambda r, out: (r / "train/ants/again").symlink_to(r / "train", target_is_directory=True),
     "$REPRO_DATA/hymenoptera_data/train/ants/again: a symlink loop (the folder links back to one that holds it); "
     "its images would be read again and again"),
    ("folder-linked-out", lambda r, out: (r / "train/bees/more").symlink_to(out, target_is_directory=True),
     "$REPRO_DATA/hymenoptera_data/train/bees/more: a symlink out of the dataset folder "
     "$REPRO_DATA/hymenoptera_data; copy the images in instead"),
    ("image-linked-out", lambda r, out: (r / "val/ants/x.jpg").symlink_to(out / "secret.jpg"),
     "$REPRO_DATA/hymenoptera_data/val/ants/x.jpg: a symlink out of the dataset folder "
     "$REPRO_DATA/hymenoptera_data; copy the images in instead"),
    ("folder-linked-twice", lambda r, out: (r / "val/bees/copy").symlink_to(r / "train/ants", target_is_directory=True),
     "$REPRO_DATA/hymenoptera_data/val/bees/copy: a symlink to another folder of the dataset; its images would "
     "count twice"),
]


@pytest.mark.parametrize("case", IMAGE_DAMAGE, ids=[c[0] for c in IMAGE_DAMAGE])
def test_an_image_folder_entry_that_is_not_a_plain_image_is_named(case, tmp_path, monkeypatch):
    """A 0-byte BMP or WebP crashed mid-training; a symlink loop multiplied the training set silently; a pipe hung."""
    import signal
    from PIL import Image

    from repro.data import hymenoptera
    _, damage, line = case
    outside = tmp_path / "private-folder"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "secret.jpg")
    damage(image_folder(tmp_path / "data"), outside)
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "data"))
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("hung")))
    signal.alarm(30)
    try:
        with pytest.raises(DataDamaged) as err:
            hymenoptera(resolution=8)
    finally:
        signal.alarm(0)
    assert str(err.value) == line and str(tmp_path) not in str(err.value) and "private" not in str(err.value)


def test_a_data_seed_beyond_the_seed_range_is_a_validation_error_not_a_crash():
    from repro.data import synthetic  # 2**32 reached torch's generator at run time and raised there
    from repro.registry import DATASETS
    from repro.spec import Component, ParamErrors, _check_component
    with pytest.raises(ParamErrors, match="less than 2147483648"):
        _check_component(Component(name="synthetic", params={"seed": 2 ** 32}), DATASETS, ())
    assert synthetic(n_train=8, n_test=8, seed=2 ** 31 - 1).train_x.shape[0] == 8
