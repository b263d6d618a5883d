"""Variable-length sequences through a bidirectional GRU/LSTM with packing.

The label is the last real token of each sequence: a model reading the padded batch end-to-end
would only see padding there, so it needs pack_padded_sequence (h_n at each sequence's own last
step). pad_packed_sequence recovers the per-step outputs for a masked mean; Embedding's
padding_idx keeps the pad token's vector at zero.
"""

import json

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD, VOCAB, CLASSES = 0, 10, 4


def make_batch(n, rng):
    lengths = rng.integers(2, 13, size=n)
    sequences = [torch.from_numpy(rng.integers(1, VOCAB, size=int(k)).astype(np.int64)) for k in lengths]
    labels = torch.tensor([int(s[-1]) % CLASSES for s in sequences])
    return pad_sequence(sequences, batch_first=True, padding_value=PAD), torch.from_numpy(lengths), labels


class LastTokenClassifier(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 12, padding_idx=PAD)
        self.lstm = nn.LSTM(12, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(4 * hidden, CLASSES)

    def forward(self, tokens, lengths):
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        steps, out_lengths = pad_packed_sequence(out, batch_first=True)
        assert torch.equal(out_lengths, lengths)
        mask = (torch.arange(steps.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        mean = (steps * mask).sum(1) / lengths[:, None]
        return self.head(torch.cat([h_n[0], h_n[1], mean], dim=-1))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = LastTokenClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(150):
        tokens, lengths, labels = make_batch(64, rng)
        optimizer.zero_grad()
        loss = loss_fn(model(tokens, lengths), labels)
        loss.backward()
        optimizer.step()
    assert model.embed.weight.grad[PAD].abs().sum().item() == 0.0
    tokens, lengths, labels = make_batch(500, np.random.default_rng(1))
    model.eval()
    with torch.no_grad():
        accuracy = (model(tokens, lengths).argmax(-1) == labels).float().mean().item()
    print(json.dumps({"test_accuracy": accuracy, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
