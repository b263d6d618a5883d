"""Autoencoder: 32-D points on a 4-D curved manifold squeezed through a 4-unit bottleneck.

nn.Sequential encoder/decoder, Tanh, MSELoss, Adam with weight decay, CosineAnnealingLR,
state_dict round trip through torch.save/torch.load.
"""

import io
import json

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    latent = rng.uniform(-1.0, 1.0, size=(n, 4))
    mixing = np.random.default_rng(123).normal(size=(4, 32))
    return torch.from_numpy(np.tanh(latent @ mixing).astype(np.float32))


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4))
        self.decoder = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 32))

    def forward(self, x):
        return self.decoder(self.encoder(x))


def main():
    torch.manual_seed(0)
    train, test = make_data(2000, seed=0), make_data(500, seed=1)
    loader = DataLoader(TensorDataset(train), batch_size=64, shuffle=True)
    model = AutoEncoder()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-6)
    epochs = 30
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    criterion = nn.MSELoss()
    for _ in range(epochs):
        for (xb,) in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), xb)
            loss.backward()
            optimizer.step()
        scheduler.step()

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = AutoEncoder()
    restored.load_state_dict(torch.load(buffer))
    restored.eval()
    with torch.no_grad():
        mse = nn.functional.mse_loss(restored(test), test).item()
        baseline = test.var().item()  # predicting the mean
    print(json.dumps({"test_mse": mse, "relative_mse": mse / baseline, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
