"""``TextCorpus``: a bundled public-domain English text for character-level language models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.utils.data.dataset import Dataset

DATA_FILE = Path(__file__).parent / "data" / "corpus.txt"


def load_text() -> str:
    """The whole bundled corpus (see ``data/README.md`` for what it contains)."""
    return DATA_FILE.read_text(encoding="utf-8")


class TextCorpus(Dataset):
    """Character windows of the bundled corpus: sample ``i`` is ``(x, y)`` with ``y`` = ``x`` shifted by one.

    The vocabulary is built from the whole text, so train and test share it. The first 90% of
    the text is the training split, the rest the test split.

    Args:
        train: the training or the test split. seq_len: characters per sample.
        stride: distance between window starts (default ``seq_len``: non-overlapping windows).

    Example:
        >>> ds = engine.datasets.TextCorpus(seq_len=32)
        >>> x, y = ds[0]
        >>> ds.decode(x)[1:] == ds.decode(y)[:-1]
        True
    """

    def __init__(self, train: bool = True, seq_len: int = 64, stride: int | None = None,
                 test_fraction: float = 0.1):
        from engine.creation import from_numpy

        text = load_text()
        self.vocab = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.vocab)}
        codes = np.array([self.stoi[c] for c in text], dtype=np.int64)
        cut = int(len(codes) * (1.0 - test_fraction))
        self.data = from_numpy(codes[:cut] if train else codes[cut:])
        self.seq_len = seq_len
        self.stride = stride or seq_len
        self.train = train
        if len(self.data) <= seq_len:
            raise ValueError(f"seq_len={seq_len} is longer than the {len(self.data)}-character split")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return (len(self.data) - self.seq_len - 1) // self.stride + 1

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} samples")
        start = index * self.stride
        window = self.data[start:start + self.seq_len + 1]
        return window[:-1], window[1:]

    def encode(self, text: str):
        """Characters to an int64 tensor of vocabulary indices."""
        from engine.creation import tensor

        return tensor([self.stoi[c] for c in text])

    def decode(self, codes) -> str:
        """Vocabulary indices (tensor or list) back to text."""
        values = codes.tolist() if hasattr(codes, "tolist") else list(codes)
        return "".join(self.vocab[i] for i in values)
