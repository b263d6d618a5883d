"""Synthetic datasets generated from a seed: blobs, spirals, regression and bar images."""

from __future__ import annotations

import numpy as np

from engine.datasets.base import ArrayDataset, split_indices


class _Synthetic(ArrayDataset):
    """Generate all samples from ``seed``, then keep the train or test part of a fixed split."""

    def __init__(self, features, targets, train: bool, test_fraction: float, seed: int, transform,
                 target_transform):
        keep = split_indices(len(targets), train, test_fraction, seed)
        super().__init__(features[keep], targets[keep], transform, target_transform)
        self.train = train


class Blobs(_Synthetic):
    """Gaussian clusters for classification: ``centers`` classes in ``n_features`` dimensions.

    Example:
        >>> x, y = engine.datasets.Blobs(n_samples=100, centers=3)[0]
        >>> x.shape, 0 <= y.item() < 3
        (engine.Size([2]), True)
    """

    def __init__(self, train: bool = True, n_samples: int = 1000, n_features: int = 2, centers: int = 3,
                 cluster_std: float = 1.0, seed: int = 0, test_fraction: float = 0.2, transform=None,
                 target_transform=None):
        rng = np.random.default_rng(seed)
        means = rng.uniform(-10.0, 10.0, size=(centers, n_features))
        labels = np.arange(n_samples) % centers
        points = means[labels] + rng.normal(0.0, cluster_std, size=(n_samples, n_features))
        super().__init__(points.astype(np.float32), labels.astype(np.int64), train, test_fraction, seed,
                         transform, target_transform)


class Spirals(_Synthetic):
    """Interleaved 2-D spirals, one arm per class: not linearly separable.

    Example:
        >>> len(engine.datasets.Spirals(n_samples=300, train=False))
        60
    """

    def __init__(self, train: bool = True, n_samples: int = 1000, n_classes: int = 3, noise: float = 0.2,
                 turns: float = 1.5, seed: int = 0, test_fraction: float = 0.2, transform=None,
                 target_transform=None):
        rng = np.random.default_rng(seed)
        labels = np.arange(n_samples) % n_classes
        radius = rng.uniform(0.05, 1.0, size=n_samples)
        angle = radius * turns * 2 * np.pi + labels * (2 * np.pi / n_classes)
        angle = angle + rng.normal(0.0, noise, size=n_samples)
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        super().__init__(points.astype(np.float32), labels.astype(np.int64), train, test_fraction, seed,
                         transform, target_transform)


class Regression(_Synthetic):
    """A noisy linear target ``y = x @ w + b + noise``; targets have shape (1,). ``coef`` holds (w, b).

    Example:
        >>> x, y = engine.datasets.Regression(n_features=4)[0]
        >>> x.shape, y.shape
        (engine.Size([4]), engine.Size([1]))
    """

    def __init__(self, train: bool = True, n_samples: int = 1000, n_features: int = 8, noise: float = 0.1,
                 seed: int = 0, test_fraction: float = 0.2, transform=None, target_transform=None):
        rng = np.random.default_rng(seed)
        w = rng.normal(0.0, 1.0, size=n_features)
        b = float(rng.normal())
        x = rng.normal(0.0, 1.0, size=(n_samples, n_features))
        y = x @ w + b + rng.normal(0.0, noise, size=n_samples)
        self.coef = (w.astype(np.float32), np.float32(b))
        super().__init__(x.astype(np.float32), y[:, None].astype(np.float32), train, test_fraction, seed,
                         transform, target_transform)


class Bars(_Synthetic):
    """Small 1xSxS images holding one bar: class 0 horizontal, class 1 vertical, class 2 diagonal.

    Example:
        >>> image, label = engine.datasets.Bars(size=8)[0]
        >>> image.shape
        engine.Size([1, 8, 8])
    """

    def __init__(self, train: bool = True, n_samples: int = 1000, size: int = 8, noise: float = 0.1,
                 seed: int = 0, test_fraction: float = 0.2, transform=None, target_transform=None):
        rng = np.random.default_rng(seed)
        labels = np.arange(n_samples) % 3
        images = rng.normal(0.0, noise, size=(n_samples, size, size))
        where = rng.integers(0, size, size=n_samples)
        for i, (label, at) in enumerate(zip(labels, where, strict=True)):
            if label == 0:
                images[i, at, :] += 1.0
            elif label == 1:
                images[i, :, at] += 1.0
            else:
                images[i] += np.eye(size, k=int(at) - size // 2)
        super().__init__(images[:, None].astype(np.float32), labels.astype(np.int64), train, test_fraction,
                         seed, transform, target_transform)
