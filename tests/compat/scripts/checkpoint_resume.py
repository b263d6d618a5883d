"""Save a training checkpoint with torch.save and resume from it: the resumed run must match exactly.

A GRU regressor with dropout, Adam and ExponentialLR; the checkpoint holds model, optimizer and
scheduler state dicts, the epoch and the RNG state, as PyTorch's own tutorials write it.
"""

import json
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def make_series(n, seed):
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.arange(13) * 0.4
    wave = np.sin(t + phase) + rng.normal(0.0, 0.05, size=(n, 13))
    x, y = wave[:, :12, None], wave[:, 12:]  # predict the next value of a noisy sine
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 24, batch_first=True)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(24, 1)

    def forward(self, x):
        h, _ = self.gru(x)
        return self.out(self.drop(h[:, -1]))


def make_training():
    model = Forecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
    return model, optimizer, scheduler


def train_epoch(model, optimizer, scheduler, loader):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
    scheduler.step()
    return loss.item()


def main():
    torch.manual_seed(0)
    x, y = make_series(600, seed=0)
    x_val, y_val = make_series(200, seed=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True)
    model, optimizer, scheduler = make_training()
    path = os.path.join(tempfile.mkdtemp(), "checkpoint.pt")
    for epoch in range(1, 7):
        train_epoch(model, optimizer, scheduler, loader)
        if epoch == 3:
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}, path)

    checkpoint = torch.load(path)
    resumed, resumed_optimizer, resumed_scheduler = make_training()
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"])
    for _ in range(checkpoint["epoch"] + 1, 7):
        train_epoch(resumed, resumed_optimizer, resumed_scheduler, loader)

    differences = [(a - b).abs().max().item() for a, b in zip(model.parameters(), resumed.parameters(), strict=True)]
    model.eval()
    with torch.no_grad():
        val_mse = nn.functional.mse_loss(model(x_val), y_val).item()
    print(json.dumps({"max_abs_difference": max(differences), "val_mse": val_mse,
                      "lr": resumed_scheduler.get_last_lr()[0]}))


if __name__ == "__main__":
    main()
