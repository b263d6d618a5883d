"""LSTM sequence classifier: remember the first token of a noisy sequence until the end.

Embedding, a two-layer batch-first LSTM with dropout between layers, gradient clipping, RMSprop.
"""

import json

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_
from torch.utils.data import DataLoader, TensorDataset

VOCAB, CLASSES, LENGTH = 12, 4, 10


def make_sequences(n, seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(CLASSES, VOCAB, size=(n, LENGTH))
    labels = rng.integers(0, CLASSES, size=n)
    tokens[:, 0] = labels  # the class is the first token; the rest is distraction
    return torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(labels.astype(np.int64))


class Classifier(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16)
        self.lstm = nn.LSTM(16, hidden, num_layers=2, batch_first=True, dropout=0.1)
        self.head = nn.Linear(hidden, CLASSES)

    def forward(self, tokens):
        outputs, (h_n, c_n) = self.lstm(self.embed(tokens))
        assert outputs.shape == (tokens.shape[0], LENGTH, h_n.shape[-1])
        assert h_n.shape == c_n.shape == (2, tokens.shape[0], h_n.shape[-1])
        return self.head(outputs[:, -1])


def main():
    torch.manual_seed(0)
    x_train, y_train = make_sequences(1200, seed=0)
    x_test, y_test = make_sequences(400, seed=1)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)
    model = Classifier()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(12):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(-1) == y_test).float().mean().item()
    print(json.dumps({"test_accuracy": accuracy, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
