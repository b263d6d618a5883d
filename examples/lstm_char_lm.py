"""A character-level LSTM language model on the bundled text corpus, trained with truncated BPTT.

The classic PyTorch word_language_model recipe: the text is cut into `batch_size` parallel streams,
the hidden state carries over between windows (detached, so gradients stop at the window edge),
gradients are clipped. Prints validation loss in bits per character and a short sample.

    python examples/lstm_char_lm.py [--epochs 12] [--hidden 192] [--device cpu|cuda]

The last line printed is JSON: {"val_bpc": ..., "val_loss": ..., "sample": ...}.
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


def batchify(codes, streams):
    """(length,) -> (length // streams, streams): each column is one contiguous stretch of text."""
    length = len(codes) // streams
    return codes[:length * streams].view(streams, length).t().contiguous()


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embed, hidden, layers, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, codes, state=None):
        out, state = self.lstm(self.drop(self.embed(codes)), state)
        return self.head(self.drop(out)), state


def evaluate(model, data, bptt):
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            x, y = data[i:i + bptt], data[i + 1:i + 1 + bptt]
            x = x[:len(y)]
            logits, state = model(x, state)
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    return total / count


def sample(model, corpus, prompt, length, device, temperature=0.8):
    model.eval()
    codes = corpus.encode(prompt).to(device).view(-1, 1)
    out = list(prompt)
    with torch.no_grad():
        logits, state = model(codes)
        for _ in range(length):
            probs = F.softmax(logits[-1, 0] / temperature, dim=-1)
            code = torch.multinomial(probs, 1)
            out.append(corpus.vocab[code.item()])
            logits, state = model(code.view(1, 1), state)
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--streams", type=int, default=16, help="batch size: parallel text streams")
    parser.add_argument("--bptt", type=int, default=32)
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track.init(vars(args))
    config = track.config
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])

    train_corpus, val_corpus = TextCorpus(train=True), TextCorpus(train=False)
    train_data = batchify(train_corpus.data, config["streams"]).to(device)
    val_data = batchify(val_corpus.data, 8).to(device)
    model = CharLSTM(train_corpus.vocab_size, config["embed"], config["hidden"], config["layers"],
                     config["dropout"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.85)
    bptt, step, started = config["bptt"], 0, time.perf_counter()

    for epoch in range(1, config["epochs"] + 1):
        model.train()
        state = None
        for i in range(0, train_data.size(0) - 1, bptt):
            x, y = train_data[i:i + bptt], train_data[i + 1:i + 1 + bptt]
            x = x[:len(y)]
            if state is not None:
                state = tuple(s.detach() for s in state)  # truncate backpropagation at the window edge
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if step % 10 == 0:
                track.log({"train/loss": loss.item()}, step=step)
        scheduler.step()
        val_loss = evaluate(model, val_data, bptt)
        track.log({"val/loss": val_loss, "val/bpc": val_loss / math.log(2), "epoch": epoch}, step=step)
        track.progress(epoch=epoch, epochs=config["epochs"])
        print(f"epoch {epoch:3d}  train loss {loss.item():.3f}  val loss {val_loss:.3f}  "
              f"({val_loss / math.log(2):.2f} bits/char)")

    text = sample(model, train_corpus, "The ", 120, device)
    print(text)
    print(json.dumps({"val_loss": val_loss, "val_bpc": val_loss / math.log(2), "sample": text,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
