"""CNN with BatchNorm on the 8x8 digits: SGD with momentum and Nesterov, StepLR, running statistics."""

import argparse
import gzip
import json

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


def load_digits(path):
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    images = (table[:, :64].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(table))
    test, train = order[:360], order[360:]
    return ((torch.from_numpy(images[train]), torch.from_numpy(table[train, 64])),
            (torch.from_numpy(images[test]), torch.from_numpy(table[test, 64])))


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10),
    )


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("digits", help="digits.csv.gz: 64 pixel counts and a label per row")
    args = parser.parse_args()
    torch.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits(args.digits)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)
    model = make_model()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    scheduler = StepLR(optimizer, step_size=4, gamma=0.3)
    criterion = nn.CrossEntropyLoss()
    for _ in range(10):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
        scheduler.step()
    bn = model[1]
    assert bn.num_batches_tracked.item() == 10 * len(loader)
    assert float(bn.running_var.min()) > 0.0
    print(json.dumps({"test_accuracy": evaluate(model, x_test, y_test), "final_loss": loss.item(),
                      "lr": scheduler.get_last_lr()[0]}))


if __name__ == "__main__":
    main()
