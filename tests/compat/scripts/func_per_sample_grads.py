"""torch.func on a small MLP: per-sample gradients (vmap over grad of a functional_call) checked
against one backward per sample, a model ensemble (stack_module_state + vmap) checked against calling
each model, and a few steps of DP-SGD-style training (per-sample clipping) on Gaussian blobs.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centers[labels] + rng.normal(0.0, 0.6, (n, 2))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(labels)


def make_model():
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3))


def main():
    torch.manual_seed(0)
    model = make_model()
    x, y = blobs(256, 0)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def sample_loss(p, xi, yi):
        out = functional_call(model, p, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x[:16], y[:16])
    loop_diff = 0.0
    for i in range(16):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            loop_diff = max(loop_diff, (per_sample[name][i] - p.grad).abs().max().item())

    models = [make_model() for _ in range(4)]
    stacked_params, stacked_buffers = stack_module_state(models)

    def ensemble_member(p, b, data):
        return functional_call(models[0], (p, b), (data,))

    ensemble_out = vmap(ensemble_member, in_dims=(0, 0, None))(stacked_params, stacked_buffers, x[:32])
    ensemble_diff = max((ensemble_out[i] - m(x[:32])).abs().max().item() for i, m in enumerate(models))

    clip, lr = 1.0, 0.5
    for step in range(60):
        batch = torch.arange(step * 32, step * 32 + 32) % x.shape[0]
        grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, x[batch], y[batch])
        norms = torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads.values()))
        scale = (clip / (norms + 1e-6)).clamp(max=1.0)
        params = {k: params[k] - lr * (grads[k] * scale.reshape(-1, *[1] * (grads[k].dim() - 1))).mean(0)
                  for k in params}
    x_test, y_test = blobs(512, 1)
    with torch.no_grad():
        accuracy = (functional_call(model, params, (x_test,)).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"per_sample_max_abs_diff": loop_diff, "ensemble_max_abs_diff": ensemble_diff,
                      "test_accuracy": round(accuracy, 4)}))


if __name__ == "__main__":
    main()
