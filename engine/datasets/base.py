"""``ArrayDataset``: the base of the bundled datasets (NumPy features and targets, a fixed split)."""

from __future__ import annotations

import numpy as np

from engine.utils.data.dataset import Dataset


def split_indices(n: int, train: bool, test_fraction: float, seed: int) -> np.ndarray:
    """The train or test part of a fixed random permutation of ``range(n)``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return np.sort(order[n_test:] if train else order[:n_test])


class ArrayDataset(Dataset):
    """Samples ``(features[i], targets[i])`` as tensors, with optional transforms.

    Attributes ``data`` and ``targets`` hold the whole split as tensors (as torchvision's datasets do).
    """

    def __init__(self, features: np.ndarray, targets: np.ndarray, transform=None, target_transform=None):
        from engine.creation import from_numpy

        self.data = from_numpy(np.ascontiguousarray(features))
        self.targets = from_numpy(np.ascontiguousarray(targets))
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index], self.targets[index]
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __repr__(self) -> str:
        return f"{type(self).__name__}(samples={len(self)}, features={tuple(self.data.shape[1:])})"
