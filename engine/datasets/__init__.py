"""Small datasets that need no download: digits, synthetic sets and a text corpus.

Each is an ``engine.utils.data.Dataset`` with a fixed train/test split (``train=True/False``).

Example:
    >>> from engine.datasets import Digits
    >>> from engine.utils.data import DataLoader
    >>> loader = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
"""

from engine.datasets.base import ArrayDataset
from engine.datasets.digits import Digits, load_digits_arrays
from engine.datasets.synthetic import Bars, Blobs, Regression, Spirals
from engine.datasets.text import TextCorpus, load_text

__all__ = ["ArrayDataset", "Bars", "Blobs", "Digits", "Regression", "Spirals", "TextCorpus", "load_digits_arrays",
           "load_text"]
