"""``engine.jit.freeze``: inline a traced module's weights as constants and fold what depends only on them."""

from __future__ import annotations


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """A copy of an eval-mode ``ScriptModule`` whose parameters and buffers are graph constants.

    Subgraphs that read only weights (a transposed weight, a folded scale) are computed once.
    ``preserved_attrs`` names parameters/buffers to keep as attributes.
    """
    from engine.fx.passes import constant_fold
    from engine.fx.serialize import graph_from_json, graph_to_json
    from engine.jit._script import RecursiveScriptModule, ScriptModule

    if not isinstance(mod, ScriptModule):
        raise RuntimeError("Freezing expects a ScriptModule as input. Please use torch.jit.script or "
                           "torch.jit.trace to script your 'nn.Module'.")
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. Please call .eval() "
                           "on your module before freezing.")
    keep = set(preserved_attrs or ())
    graph = graph_from_json(graph_to_json(mod.graph))
    state = {name: t for name, t in mod.state_dict(keep_vars=True).items() if name in keep}
    frozen = RecursiveScriptModule(state, graph, mod._class_name, mod.constants)
    for node in graph.nodes:
        if node.op == "get_attr" and node.target not in keep and node.target not in frozen._constant_names:
            name = frozen.add_constant(mod.get_attr_value(node.target).detach().clone(), "_frozen_param")
            node.target = name
    constant_fold(frozen)
    frozen.eval()
    return frozen


def optimize_for_inference(mod, other_methods=None):
    """``freeze`` (when not frozen yet) for inference: weights inlined, constant subgraphs folded."""
    return mod if not any(True for _ in mod.parameters()) else freeze(mod.eval() if mod.training else mod)
