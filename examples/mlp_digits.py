"""Train an MLP on the bundled 8x8 handwritten digits; reaches >= 97% test accuracy in seconds on CPU.

Written as a PyTorch user would write it: only the imports name the engine. Metrics go through
engine.track (a local ./kiln-runs/<time>/ folder outside Kiln, the run page inside it).

    python examples/mlp_digits.py [--epochs 30] [--device cpu|cuda]

The last line printed is JSON: {"test_accuracy": ..., "test_loss": ..., ...}.
"""

import argparse
import json
import time

import engine as torch
import engine.nn as nn
import engine.nn.functional as F
from engine import track
from engine.datasets import Digits
from engine.utils.data import DataLoader


class MLP(nn.Module):
    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.net(x)


def evaluate(model, loader, device):
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            total += labels.numel()
    return correct / total, loss_sum / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track.init(vars(args))  # inside Kiln, the run's params override these
    config = track.config
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])

    train_loader = DataLoader(Digits(train=True), batch_size=config["batch_size"], shuffle=True)
    test_loader = DataLoader(Digits(train=False), batch_size=256)
    model = MLP(config["hidden"], config["dropout"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])

    step, started = 0, time.perf_counter()
    for epoch in range(1, config["epochs"] + 1):
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 20 == 0:
                track.log({"train/loss": loss.item()}, step=step)
        scheduler.step()
        accuracy, test_loss = evaluate(model, test_loader, device)
        track.log({"test/accuracy": accuracy, "test/loss": test_loss, "lr": scheduler.get_last_lr()[0],
                   "epoch": epoch}, step=step)
        track.progress(epoch=epoch, epochs=config["epochs"])
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}  test accuracy {accuracy:.4f}")

    print(json.dumps({"test_accuracy": accuracy, "test_loss": test_loss, "epochs": config["epochs"],
                      "seconds": round(time.perf_counter() - started, 1), "run_dir": str(track.run_dir())}))


if __name__ == "__main__":
    main()
