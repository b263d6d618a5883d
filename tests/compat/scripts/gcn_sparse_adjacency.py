"""A two-layer graph convolutional network (Kipf & Welling) on a synthetic citation-style graph.

Nodes fall into three communities (a stochastic block model: dense inside, sparse across); features are
noisy community signatures. The symmetric normalised adjacency D^-1/2 (A + I) D^-1/2 is a sparse COO
tensor and each layer propagates with torch.sparse.mm; only 10 % of the nodes are labelled.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_graph(n_per_class=60, n_classes=3, n_features=16, p_in=0.08, p_out=0.004, seed=0):
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    labels = np.repeat(np.arange(n_classes), n_per_class)
    same = labels[:, None] == labels[None, :]
    upper = np.triu(rng.random((n, n)) < np.where(same, p_in, p_out), 1)
    adj = upper | upper.T
    centers = rng.normal(0.0, 1.0, (n_classes, n_features))
    features = centers[labels] * 0.4 + rng.normal(0.0, 1.0, (n, n_features))
    train = np.zeros(n, dtype=bool)
    for c in range(n_classes):
        train[rng.choice(np.flatnonzero(labels == c), n_per_class // 10, replace=False)] = True
    return adj, features.astype(np.float32), labels, train


def normalised_adjacency(adj):
    a = adj.astype(np.float32) + np.eye(adj.shape[0], dtype=np.float32)
    rows, cols = np.nonzero(a)
    d_inv_sqrt = 1.0 / np.sqrt(a.sum(1))
    values = d_inv_sqrt[rows] * d_inv_sqrt[cols]
    indices = torch.tensor(np.stack([rows, cols]), dtype=torch.long)
    return torch.sparse_coo_tensor(indices, torch.tensor(values), (a.shape[0], a.shape[0])).coalesce()


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x, adj):
        return torch.sparse.mm(adj, self.linear(x))


class GCN(nn.Module):
    def __init__(self, n_features, hidden, n_classes, dropout=0.5):
        super().__init__()
        self.gc1 = GraphConvolution(n_features, hidden)
        self.gc2 = GraphConvolution(hidden, n_classes)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        return F.log_softmax(self.gc2(x, adj), dim=1)


def main():
    torch.manual_seed(0)
    adj, features, labels, train = make_graph()
    a_hat = normalised_adjacency(adj)
    assert a_hat.is_sparse and a_hat.layout == torch.sparse_coo and a_hat._nnz() < adj.size // 10
    x = torch.tensor(features)
    y = torch.tensor(labels)
    train_mask = torch.tensor(train)
    model = GCN(x.shape[1], 32, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(100):
        model.train()
        optimizer.zero_grad()
        loss = F.nll_loss(model(x, a_hat)[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(x, a_hat).argmax(1)
        dense_pred = F.log_softmax(a_hat.to_dense() @ model.gc2.linear(F.relu(
            a_hat.to_dense() @ model.gc1.linear(x))), dim=1).argmax(1)
    test = ~train_mask
    accuracy = (pred[test] == y[test]).float().mean().item()
    print(json.dumps({"train_loss": round(loss.item(), 4), "test_accuracy": round(accuracy, 4),
                      "sparse_dense_agreement": (pred == dense_pred).float().mean().item()}))


if __name__ == "__main__":
    main()
