"""Bundled datasets: sizes, splits, determinism, and that a DataLoader batches them."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import datasets
from engine.utils.data import DataLoader


def test_digits_has_all_1797_images_split_without_overlap():
    train, test = datasets.Digits(train=True), datasets.Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    image, _ = train[0]
    assert image.shape == engine.Size([1, 8, 8]) and image.dtype == engine.float32
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    assert sorted(set(train.targets.tolist())) == list(range(10))
    pixels, labels = datasets.load_digits_arrays()
    assert pixels.shape == (1797, 8, 8) and labels[:3].tolist() == [0, 1, 2]


@pytest.mark.parametrize("make", [datasets.Blobs, datasets.Spirals, datasets.Regression, datasets.Bars])
def test_synthetic_sets_repeat_from_their_seed(make):
    a, b = make(train=True, seed=3), make(train=True, seed=3)
    assert engine.equal(a.data, b.data) and engine.equal(a.targets, b.targets)
    assert not engine.equal(a.data, make(train=True, seed=4).data)
    assert len(make(train=True)) == 800 and len(make(train=False)) == 200


def test_blobs_are_separable_by_their_nearest_mean():
    ds = datasets.Blobs(n_samples=300, centers=3, cluster_std=0.5)
    x, y = ds.data.numpy(), ds.targets.numpy()
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    nearest = np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == y).mean() > 0.95


def test_bars_classes_look_like_their_names():
    ds = datasets.Bars(noise=0.0, n_samples=30)
    for image, label in (ds[i] for i in range(len(ds))):
        grid = image[0].numpy()
        if label.item() == 0:
            assert grid.sum(1).max() == 8
        elif label.item() == 1:
            assert grid.sum(0).max() == 8


def test_text_corpus_windows_shift_by_one_and_share_a_vocabulary():
    train, test = datasets.TextCorpus(train=True, seq_len=16), datasets.TextCorpus(train=False, seq_len=16)
    assert 20_000 < len(datasets.load_text()) < 50_000
    assert train.vocab == test.vocab
    x, y = train[3]
    assert x.dtype == engine.int64 and x.shape == engine.Size([16])
    assert train.decode(x)[1:] == train.decode(y)[:-1]
    assert train.decode(train.encode("the raven")) == "the raven"
    with pytest.raises(IndexError):
        train[len(train)]


def test_datasets_batch_through_a_dataloader():
    x, y = next(iter(DataLoader(datasets.Digits(), batch_size=32, shuffle=True)))
    assert x.shape == engine.Size([32, 1, 8, 8]) and y.shape == engine.Size([32])
    tx, ty = next(iter(DataLoader(datasets.TextCorpus(seq_len=8), batch_size=4)))
    assert tx.shape == ty.shape == engine.Size([4, 8])
