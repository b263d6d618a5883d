"""``engine.jit.save`` / ``engine.jit.load``: one safetensors file, the graph as JSON in its metadata.

The weights are safetensors tensors (written by ``engine.save``); the graph names its ops by
registry name, so loading builds no class of the model and unpickles nothing.
"""

from __future__ import annotations

import json
import os

FORMAT = "engine.jit"
VERSION = 1


def save(m, f, _extra_files=None, _record=None) -> None:
    """Write a traced module (``engine.jit.trace``'s result or a loaded one) to a path or file object."""
    from engine.fx.graph_module import GraphModule
    from engine.fx.serialize import graph_to_json
    from engine.serialization import _write_atomically, dumps

    if not isinstance(m, GraphModule):
        raise TypeError(f"engine.jit.save expects a traced module (engine.jit.trace), got {type(m).__name__}; "
                        "trace it first, or save its state_dict with engine.save")
    state, persistent = {}, []
    for path, sub in m.named_modules():
        prefix = f"{path}." if path else ""
        for k, p in sub._parameters.items():
            if p is not None:
                state[prefix + k] = p
        for k, b in sub._buffers.items():
            if b is not None and prefix + k not in m._constant_names:
                state[prefix + k] = b
                if k not in sub._non_persistent_buffers_set:
                    persistent.append(prefix + k)
    record = {"format": FORMAT, "version": VERSION, "class_name": m._class_name, "kind": type(m).__name__,
              "training": m.training, "graph": json.dumps(graph_to_json(m.graph), allow_nan=False),
              "state": list(state), "persistent_buffers": persistent, "constants": m.constants,
              "extra_files": {k: v if isinstance(v, str) else bytes(v) for k, v in (_extra_files or {}).items()},
              **(_record or {})}
    if FORMAT in state:
        raise ValueError(f"engine.jit.save can't store a parameter or buffer named {FORMAT!r}")
    # NOTE: weights at the top level keep their state-dict names as safetensors tensor names; always
    # safetensors, whatever the file's suffix (engine.save writes PyTorch's zip format for ".pt").
    data = dumps({**state, FORMAT: record})
    if hasattr(f, "write"):
        f.write(data)
    else:
        _write_atomically(os.fspath(f), data)


def load(f, map_location=None, _extra_files=None, _cls=None):
    """Read a file written by ``engine.jit.save``; returns a module that runs its graph."""
    from engine.fx.serialize import graph_from_json
    from engine.jit._script import RecursiveScriptModule, ScriptFunction
    from engine.nn.parameter import Parameter
    from engine.serialization import load as load_tensors

    if isinstance(f, str | os.PathLike) and not os.path.exists(f):
        raise ValueError(f"The provided filename {os.fspath(f)} does not exist")
    tree = load_tensors(f, map_location=map_location)
    record = tree.get(FORMAT) if isinstance(tree, dict) else None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RuntimeError("not an engine.jit file (written by engine.jit.save); a state dict or checkpoint "
                           "loads with engine.load")
    version = record.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise RuntimeError(f"this engine.jit file has format version {version}, newer than this engine reads "
                           f"(version {VERSION}): load it with a newer engine")
    graph = graph_from_json(json.loads(record["graph"]))
    persistent = set(record["persistent_buffers"])
    cls = _cls or (ScriptFunction if record.get("kind") == "ScriptFunction" else RecursiveScriptModule)
    m = cls({}, graph, record["class_name"], record["constants"])
    for name in record["state"]:
        t = tree[name]
        m._put(name, t, persistent=isinstance(t, Parameter) or name in persistent)
    m.train(record["training"])
    if _extra_files is not None:
        saved = record.get("extra_files", {})
        for key in list(_extra_files):
            if key in saved:
                _extra_files[key] = saved[key]
    m.__dict__["_record"] = record
    return m
