"""The recipe's models, sized by ``hidden_size``, ``layers`` and ``dropout``.

- mlp: ``layers`` hidden Linear-ReLU(-Dropout) layers of ``hidden_size`` units on the flattened input.
- cnn: ``layers`` 3x3 Conv-BatchNorm-ReLU blocks of ``hidden_size`` channels, 2x2 max-pooling after
  each while the image is at least 4 pixels wide, then Dropout and a Linear classifier.
- lstm: an ``layers``-deep LSTM of ``hidden_size`` units: over image rows (classifying from the last
  step) or over embedded characters (predicting the next character at every step).
- gpt: ``layers`` pre-norm transformer blocks of width ``hidden_size`` with causal self-attention
  and tied input/output embeddings, predicting the next character.
"""

from __future__ import annotations

import math

import engine
import engine.nn as nn
import engine.nn.functional as F
from worker.recipes.config import Recipe
from worker.recipes.data import TEXT_WINDOW, Task


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden: int, layers: int, outputs: int, dropout: float):
        super().__init__()
        body: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(layers):
            body += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout:
                body.append(nn.Dropout(dropout))
            width = hidden
        self.net = nn.Sequential(*body, nn.Linear(width, outputs))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self, channels: int, size: int, hidden: int, layers: int, outputs: int, dropout: float):
        super().__init__()
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU()]
            if size >= 4:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            channels = hidden
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(hidden * size * size, outputs))

    def forward(self, x):
        return self.classifier(self.features(x))


class RowLSTM(nn.Module):
    """Reads a 1xHxW image as H steps of W pixels; classifies from the last step."""

    def __init__(self, width: int, hidden: int, layers: int, outputs: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(width, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, images):
        out, _ = self.lstm(images.flatten(1, 2))  # (N, 1, H, W) -> (N, H, W)
        return self.head(self.drop(out[:, -1]))


class CharLSTM(nn.Module):
    """Next-character logits (N, T, vocab) for characters (N, T)."""

    def __init__(self, vocab: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, codes):
        out, _ = self.lstm(self.embed(codes))
        return self.head(self.drop(out))


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = (z.view(n, t, self.heads, c // self.heads).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(n, t, c))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    def __init__(self, vocab: int, context: int, width: int, layers: int, dropout: float):
        super().__init__()
        heads = attention_heads(width)
        self.tok_emb = nn.Embedding(vocab, width)
        self.pos_emb = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(width, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied embeddings
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "mlp.2.weight")):  # GPT-2's scaled init of residual outputs
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    def forward(self, codes):
        positions = engine.arange(codes.shape[1], device=codes.device)
        x = self.drop(self.tok_emb(codes) + self.pos_emb(positions))
        return self.lm_head(self.ln_f(self.blocks(x)))


def attention_heads(width: int) -> int:
    """The most heads (of 8, 4, 2) that leave each at least 16 wide; one head for narrow models."""
    return next((h for h in (8, 4, 2) if width % h == 0 and width // h >= 16), 1)


def build_model(recipe: Recipe, task: Task) -> nn.Module:
    hidden, layers, dropout = recipe.hidden_size, recipe.layers, recipe.dropout
    if recipe.model == "mlp":
        return MLP(math.prod(task.sample_shape), hidden, layers, task.outputs, dropout)
    if recipe.model == "cnn":
        channels, size, _ = task.sample_shape
        return CNN(channels, size, hidden, layers, task.outputs, dropout)
    if recipe.model == "lstm" and task.kind == "language":
        return CharLSTM(task.outputs, hidden, layers, dropout)
    if recipe.model == "lstm":
        return RowLSTM(task.sample_shape[-1], hidden, layers, task.outputs, dropout)
    if recipe.model == "gpt":
        return GPT(task.outputs, TEXT_WINDOW, hidden, layers, dropout)
    raise ValueError(f"unknown model {recipe.model!r}")  # parse_recipe already refused it
