"""The 8x8 handwritten digits (UCI "Optical Recognition of Handwritten Digits", test part: 1,797 images)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from engine.datasets.base import ArrayDataset, split_indices

DATA_FILE = Path(__file__).parent / "data" / "digits.csv.gz"


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as uint8 (N, 8, 8) with pixel counts 0..16, and their int64 labels."""
    with gzip.open(DATA_FILE, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64]


class Digits(ArrayDataset):
    """Handwritten digits 0-9 as 1x8x8 float32 images in [0, 1]; bundled, no download.

    Args:
        train: the training split (80%) or the test split (20%); the split is fixed.
        transform, target_transform: applied to each image / label.
        test_fraction, seed: change the split.

    Example:
        >>> ds = engine.datasets.Digits(train=True)
        >>> image, label = ds[0]
        >>> image.shape, len(ds) + len(engine.datasets.Digits(train=False))
        (engine.Size([1, 8, 8]), 1797)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True, transform=None, target_transform=None, test_fraction: float = 0.2,
                 seed: int = 0):
        images, labels = load_digits_arrays()
        keep = split_indices(len(labels), train, test_fraction, seed)
        features = (images[keep].astype(np.float32) / 16.0)[:, None]
        super().__init__(features, labels[keep], transform, target_transform)
        self.train = train
