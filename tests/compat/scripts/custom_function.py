"""A custom autograd.Function (a smooth ReLU with a hand-written backward) trained inside a model.

Checks the hand-written gradient with torch.autograd.gradcheck and against autograd of the same
formula, then trains a classifier on Gaussian blobs that uses it; ctx.save_for_backward,
ctx.needs_input_grad and a non-tensor argument are all exercised.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SoftplusReLU(torch.autograd.Function):
    """log(1 + exp(beta * x)) / beta, with its gradient sigmoid(beta * x) written by hand."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return torch.where(x * beta > 20, x, torch.log1p(torch.exp(x * beta)) / beta)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_x = grad_output * torch.sigmoid(x * ctx.beta) if ctx.needs_input_grad[0] else None
        return grad_x, None


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(SoftplusReLU.apply(self.fc1(x), 2.0))


def make_blobs(n, seed):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(7).normal(0.0, 3.0, size=(4, 5))
    labels = np.arange(n) % 4
    points = centers[labels] + rng.normal(0.0, 1.0, size=(n, 5))
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def main():
    torch.manual_seed(0)
    x = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: SoftplusReLU.apply(t, 1.5), (x,))
    (custom,) = torch.autograd.grad(SoftplusReLU.apply(x, 1.5).sum(), x)
    (reference,) = torch.autograd.grad((F.softplus(x * 1.5) / 1.5).sum(), x)
    assert torch.allclose(custom, reference)

    x_train, y_train = make_blobs(800, seed=0)
    x_test, y_test = make_blobs(400, seed=1)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(100):  # full-batch steps
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_train), y_train)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"test_accuracy": accuracy, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
