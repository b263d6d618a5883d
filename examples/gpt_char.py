"""A small GPT-style character model on the bundled text corpus, with tied input/output embeddings.

Pre-norm transformer blocks with causal `F.scaled_dot_product_attention`, AdamW with weight decay
only on matrices, linear warmup then cosine decay, gradient clipping, and sampling at the end.
Written as a PyTorch user would write it: only the imports name the engine.

    python examples/gpt_char.py [--steps 600] [--layers 2] [--embed 64] [--device cpu|cuda]

The last line printed is JSON: {"val_loss": ..., "val_bpc": ..., "sample": ...}.
"""

import argparse
import json
import math
import time

import engine as torch
import engine.nn as nn
import engine.nn.functional as F
from engine import track
from engine.datasets import TextCorpus
from engine.utils.data import DataLoader


class CausalSelfAttention(nn.Module):
    def __init__(self, embed, heads, dropout):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(embed, 3 * embed)
        self.proj = nn.Linear(embed, embed)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in self.qkv(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class Block(nn.Module):
    def __init__(self, embed, heads, dropout):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed)
        self.attn = CausalSelfAttention(embed, heads, dropout)
        self.ln2 = nn.LayerNorm(embed)
        self.mlp = nn.Sequential(nn.Linear(embed, 4 * embed), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * embed, embed), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, embed, heads, layers, dropout):
        super().__init__()
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab_size, embed)
        self.pos_emb = nn.Embedding(block_size, embed)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(embed, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(embed)
        self.lm_head = nn.Linear(embed, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one matrix embeds and un-embeds
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):  # GPT-2's scaled residual init
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        positions = torch.arange(idx.size(1), device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(positions))
        return self.lm_head(self.ln_f(self.blocks(x)))

    def optimizer(self, lr, weight_decay):
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))

    @torch.no_grad()
    def generate(self, idx, new_tokens, temperature=0.8, top_k=None):
        for _ in range(new_tokens):
            logits = self(idx[:, -self.block_size:])[:, -1, :] / temperature
            if top_k is not None:
                kth = torch.topk(logits, top_k).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1)], dim=1)
        return idx


def evaluate(model, loader, device):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="sum").item()
            count += y.numel()
    return total / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track.init(vars(args))
    config = track.config
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])

    block = config["block_size"]
    train_set = TextCorpus(train=True, seq_len=block, stride=block // 4)  # overlapping windows
    val_loader = DataLoader(TextCorpus(train=False, seq_len=block), batch_size=64)
    model = GPT(train_set.vocab_size, block, config["embed"], config["heads"], config["layers"],
                config["dropout"]).to(device)
    assert model.lm_head.weight is model.tok_emb.weight
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e3:.1f}k parameters, vocabulary of {train_set.vocab_size} characters")

    optimizer = model.optimizer(config["lr"], config["weight_decay"])
    steps, warmup = config["steps"], config["warmup"]

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True, drop_last=True)
    step, started = 0, time.perf_counter()
    while step < steps:
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 10 == 0:
                track.log({"train/loss": loss.item(), "lr": scheduler.get_last_lr()[0]}, step=step)
            if step % 100 == 0 or step == steps:
                val_loss = evaluate(model, val_loader, device)
                track.log({"val/loss": val_loss, "val/bpc": val_loss / math.log(2)}, step=step)
                track.progress(step=step, total=steps)
                print(f"step {step:5d}  train loss {loss.item():.3f}  val loss {val_loss:.3f}")
                model.train()
            if step == steps:
                break

    prompt = train_set.encode("The ").view(1, -1).to(device)
    text = train_set.decode(model.generate(prompt, 160, top_k=10)[0])
    print(text)
    print(json.dumps({"val_loss": val_loss, "val_bpc": val_loss / math.log(2), "params": n_params, "sample": text,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
