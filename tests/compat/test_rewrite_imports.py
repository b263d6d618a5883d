"""The rewriter changes import statements only, and refuses what the engine can't stand in for."""

from __future__ import annotations

import pytest
from rewrite_imports import RewriteError, rewrite


@pytest.mark.parametrize(("before", "after"), [
    ("import torch\n", "import engine as torch\n"),
    ("import torch as th\n", "import engine as th\n"),
    ("import torch.nn as nn\n", "import engine.nn as nn\n"),
    ("import torch.nn.functional as F\n", "import engine.nn.functional as F\n"),
    ("import torch.optim as optim\n", "import engine.optim as optim\n"),
    ("from torch import nn, optim\n", "from engine import nn, optim\n"),
    ("from torch.nn import functional as F\n", "from engine.nn import functional as F\n"),
    ("from torch.utils.data import DataLoader, TensorDataset\n",
     "from engine.utils.data import DataLoader, TensorDataset\n"),
    ("from torch.optim.lr_scheduler import StepLR\n", "from engine.optim.lr_scheduler import StepLR\n"),
    ("import torch.nn\n", "import engine.nn; import engine as torch\n"),
    ("import os, torch\n", "import os, engine as torch\n"),
])
def test_import_forms(before, after):
    assert rewrite(before) == after


def test_only_import_lines_change():
    source = ("import json\nimport torch\n\n\ndef main():\n    import torch.nn as nn\n"
              "    return nn.Linear(2, 2), 'import torch', torch.ones(1)  # torch stays torch\n")
    assert rewrite(source) == source.replace("import torch\n", "import engine as torch\n").replace(
        "    import torch.nn as nn", "    import engine.nn as nn")


def test_parenthesised_multiline_import():
    source = "from torch.utils.data import (\n    DataLoader,\n    TensorDataset,\n)\nx = 1\n"
    assert rewrite(source) == "from engine.utils.data import DataLoader, TensorDataset\nx = 1\n"


def test_relative_and_unrelated_imports_are_left_alone():
    source = "from . import torch\nimport numpy as np\nfrom os import path\n"
    assert rewrite(source) == source


@pytest.mark.parametrize("source", ["import torchvision\n", "from torchaudio import functional\n"])
def test_other_pytorch_packages_are_refused_with_a_reason(source):
    with pytest.raises(RewriteError, match="has no engine counterpart"):
        rewrite(source)


def test_torch_import_sharing_a_line_is_refused():
    with pytest.raises(RewriteError, match="own line"):
        rewrite("import numpy; import torch\n")
