"""Train a small CNN (conv-BN-ReLU blocks) on the bundled 8x8 digits; reaches >= 98% test accuracy on CPU.

Random one-pixel shifts augment the training images. Written as a PyTorch user would write it:
only the imports name the engine; metrics go through engine.track.

    python examples/cnn_digits.py [--epochs 20] [--width 32] [--device cpu|cuda]

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


class RandomShift:
    """Shift a 1x8x8 image by up to `pixels` in each direction, filling with zeros."""

    def __init__(self, pixels: int = 1):
        self.pixels = pixels

    def __call__(self, image):
        padded = F.pad(image, (self.pixels,) * 4)
        dy, dx = torch.randint(0, 2 * self.pixels + 1, (2,)).tolist()
        return padded[:, dy:dy + image.shape[1], dx:dx + image.shape[2]]


class CNN(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

        self.features = nn.Sequential(
            block(1, width), block(width, width), nn.MaxPool2d(2),            # 8x8 -> 4x4
            block(width, 2 * width), block(2 * width, 2 * width), nn.MaxPool2d(2),  # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width * 2 * 2, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track.init(vars(args))  # inside Kiln, the run's params override these
    config = track.config
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])

    train_set = Digits(train=True, transform=RandomShift(1))
    train_loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True)
    test_loader = DataLoader(Digits(train=False), batch_size=256)
    model = CNN(config["width"], config["dropout"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=5e-4,
                                nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["lr"], epochs=config["epochs"],
                                                    steps_per_epoch=len(train_loader))

    step, started = 0, time.perf_counter()
    for epoch in range(1, config["epochs"] + 1):
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 20 == 0:
                track.log({"train/loss": loss.item(), "lr": scheduler.get_last_lr()[0]}, step=step)
        accuracy, test_loss = evaluate(model, test_loader, device)
        track.log({"test/accuracy": accuracy, "test/loss": test_loss, "epoch": epoch}, step=step)
        track.progress(epoch=epoch, epochs=config["epochs"])
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}  test accuracy {accuracy:.4f}")

    print(json.dumps({"test_accuracy": accuracy, "test_loss": test_loss, "epochs": config["epochs"],
                      "seconds": round(time.perf_counter() - started, 1), "run_dir": str(track.run_dir())}))


if __name__ == "__main__":
    main()
