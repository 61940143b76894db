"""Datasets and batched augmentation."""
from __future__ import annotations

import pytest
import torch

from repro.data import DataMissing, availability, jitter, load_dataset, mnist


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
    with pytest.raises(DataMissing, match=rf"MNIST not found in {tmp_path}/MNIST/raw/.*set REPRO_DATA"):
        mnist()


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
