"""Rotary position embeddings written with complex numbers, as LLaMA's reference code does (torch.polar,
view_as_complex, view_as_real, freqs_cis), in a small causal attention model that must learn a relative
position ("repeat the token three places back"), and an FFT filter (rfft/irfft with a complex parameter)."""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, SEQ, DIM, HEADS, LAG = 12, 24, 32, 2, 3


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    return torch.polar(torch.ones_like(freqs), freqs)  # complex64


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


class RotaryAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_dim = DIM // HEADS
        self.wq, self.wk = nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, DIM, bias=False)
        self.wv, self.wo = nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, DIM, bias=False)
        self.register_buffer("freqs_cis", precompute_freqs_cis(self.head_dim, SEQ), persistent=False)
        self.register_buffer("mask", torch.full((SEQ, SEQ), float("-inf")).triu(1), persistent=False)

    def forward(self, x):
        b, t, _ = x.shape
        xq = self.wq(x).view(b, t, HEADS, self.head_dim)
        xk = self.wk(x).view(b, t, HEADS, self.head_dim)
        xv = self.wv(x).view(b, t, HEADS, self.head_dim)
        xq, xk = apply_rotary_emb(xq, xk, self.freqs_cis[:t])
        q, k, v = xq.transpose(1, 2), xk.transpose(1, 2), xv.transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / self.head_dim ** 0.5 + self.mask[:t, :t]
        out = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, DIM)
        return self.wo(out)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.attn = RotaryAttention()
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, tokens):
        x = self.embed(tokens)
        return self.head(self.norm(x + self.attn(x)))


def train_rotary(rng):
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(250):
        tokens = torch.tensor(rng.integers(0, VOCAB, (32, SEQ)), dtype=torch.long)
        logits = model(tokens)[:, LAG:]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, :-LAG].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tokens = torch.tensor(rng.integers(0, VOCAB, (256, SEQ)), dtype=torch.long)
    with torch.no_grad():
        predicted = model(tokens)[:, LAG:].argmax(-1)
    return float((predicted == tokens[:, :-LAG]).float().mean())


def train_fft_filter(rng):
    """Learn a circular convolution as a complex frequency response: y = irfft(rfft(x) * H)."""
    n = 64
    kernel = torch.tensor(rng.standard_normal(n) * np.exp(-np.arange(n) / 4.0), dtype=torch.float32)
    target_response = torch.fft.rfft(kernel)
    response = nn.Parameter(torch.zeros(n // 2 + 1, dtype=torch.cfloat))
    opt = torch.optim.SGD([response], lr=0.5)
    for _ in range(200):
        x = torch.randn(16, n)
        y = torch.fft.irfft(torch.fft.rfft(x) * target_response, n=n)
        prediction = torch.fft.irfft(torch.fft.rfft(x, norm="ortho") * response, n=n, norm="ortho")
        loss = F.mse_loss(prediction, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    error = (response.detach() - target_response).abs().max() / target_response.abs().max()
    return loss.item(), error.item(), str(response.dtype).split(".")[-1]


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    accuracy = train_rotary(rng)
    loss, response_error, dtype = train_fft_filter(rng)
    print(json.dumps({"rotary_lag_accuracy": accuracy, "fft_filter_loss": loss,
                      "fft_response_error": response_error, "fft_param_is_complex64": dtype == "complex64"}))


if __name__ == "__main__":
    main()
