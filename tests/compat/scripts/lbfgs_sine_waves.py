"""Sine-wave prediction with two stacked LSTMCells trained by L-BFGS (closure, strong Wolfe line search),
in the style of pytorch/examples' time-sequence-prediction; then it predicts the future from its own output."""

import json

import numpy as np
import torch
import torch.nn as nn

WAVES, LENGTH, PERIOD = 24, 60, 20.0


def make_waves(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH)[None, :] + rng.integers(-4 * int(PERIOD), 4 * int(PERIOD), size=(WAVES, 1))
    return torch.from_numpy(np.sin(t / PERIOD * 2 * np.pi / 4).astype(np.float64))


class Sequence(nn.Module):
    def __init__(self, hidden=20):
        super().__init__()
        self.hidden = hidden
        self.cell1 = nn.LSTMCell(1, hidden)
        self.cell2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        n = input.size(0)
        h1 = torch.zeros(n, self.hidden, dtype=torch.double)
        c1 = torch.zeros(n, self.hidden, dtype=torch.double)
        h2 = torch.zeros(n, self.hidden, dtype=torch.double)
        c2 = torch.zeros(n, self.hidden, dtype=torch.double)
        for x in input.split(1, dim=1):
            h1, c1 = self.cell1(x, (h1, c1))
            h2, c2 = self.cell2(h1, (h2, c2))
            output = self.linear(h2)
            outputs.append(output)
        for _ in range(future):  # fed its own predictions
            h1, c1 = self.cell1(output, (h1, c1))
            h2, c2 = self.cell2(h1, (h2, c2))
            output = self.linear(h2)
            outputs.append(output)
        return torch.cat(outputs, dim=1)


def main():
    torch.manual_seed(0)
    train, test = make_waves(0), make_waves(1)
    model = Sequence().double()
    criterion = nn.MSELoss()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.8, max_iter=12, line_search_fn="strong_wolfe")
    for _ in range(6):
        def closure():
            optimizer.zero_grad()
            loss = criterion(model(train[:, :-1]), train[:, 1:])
            loss.backward()
            return loss
        loss = optimizer.step(closure)
    with torch.no_grad():
        future = 10
        prediction = model(test[:, :-future - 1], future=future)
        test_mse = criterion(prediction[:, : LENGTH - future - 1], test[:, 1:LENGTH - future]).item()
        future_mse = criterion(prediction[:, -future:], test[:, -future:]).item()
    print(json.dumps({"train_loss": loss.item(), "test_mse": test_mse, "future_mse": future_mse}))


if __name__ == "__main__":
    main()
