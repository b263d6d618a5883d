"""Double backward through conv2d and conv_transpose2d: the convolution rebuilt from differentiable ops (pad, strided slices,
matmul), differentiated with ``create_graph`` when a backward must itself be differentiable (gradient
penalties, ``autograd.grad(..., create_graph=True)``). Slow by design: it runs only on that path; the
ordinary backward stays the fused GEMM one in conv.py."""

from __future__ import annotations

from engine.autograd.grad_mode import enable_grad
from engine.ops.shape import cat


def composite_conv2d(x, w, stride: tuple, pads: tuple, dilation: tuple, groups: int):
    """conv2d(x, w) without bias as a sum over kernel taps of (strided slice of padded x) @ w[:, :, i, j]ᵀ."""
    from engine.nn.functional import pad

    top, bottom, left, right = pads
    xp = pad(x, (left, right, top, bottom)) if any(pads) else x
    h, wi = xp.shape[2:]
    o, cg, kh, kw = w.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wi - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og = o // groups
    outputs = []
    for group in range(groups):
        xg = xp[:, group * cg:(group + 1) * cg]
        wg = w[group * og:(group + 1) * og]
        taps = []
        for i in range(kh):
            for j in range(kw):
                r, s = i * dilation[0], j * dilation[1]
                window = xg[:, :, r:r + stride[0] * (ho - 1) + 1:stride[0], s:s + stride[1] * (wo - 1) + 1:stride[1]]
                taps.append(window.permute(0, 2, 3, 1) @ wg[:, :, i, j].t())  # (N, Ho, Wo, O/G)
        outputs.append(sum(taps[1:], taps[0]))
    out = outputs[0] if groups == 1 else cat(outputs, -1)
    return out.permute(0, 3, 1, 2)


def _grads_with_graph(composite, x, w, g, needs: tuple):
    """(grad_x, grad_w, grad_b) of ``composite(x, w)`` (+ bias) for ``g``, as tensors that carry their own graph."""
    from engine.autograd.graph import grad

    need_x, need_w, need_b = needs
    inputs = [t for t, need in ((x, need_x), (w, need_w)) if need]
    grads = []
    if inputs:
        with enable_grad():
            out = composite(x, w)
        grads = list(grad(out, inputs, g, create_graph=True, allow_unused=True))
    grad_x = grads.pop(0) if need_x else None
    grad_w = grads.pop(0) if need_w else None
    grad_b = g.sum((0, 2, 3)) if need_b else None
    return grad_x, grad_w, grad_b


def conv2d_differentiable_backward(x, w, g, needs: tuple, stride, pads, dilation, groups):
    """(grad_x, grad_w, grad_b) of conv2d as tensors that carry their own graph."""
    return _grads_with_graph(lambda x, w: composite_conv2d(x, w, stride, pads, dilation, groups), x, w, g, needs)


def composite_conv_transpose2d(x, w, stride, offset, dilation, groups, out_hw, canvas):
    """conv_transpose2d(x, w) without bias: the VJP of conv2d(·, w) at cotangent x (its definition), taken
    through `composite_conv2d` with a graph, so it is differentiable in x and w."""
    from engine.autograd.graph import grad
    from engine.creation import zeros

    top, left = offset
    z = zeros(x.shape[0], w.shape[1] * groups, *out_hw, dtype=x.dtype, device=x.device, requires_grad=True)
    pads = (top, canvas[0] - top - out_hw[0], left, canvas[1] - left - out_hw[1])
    with enable_grad():
        y = composite_conv2d(z, w, stride, pads, dilation, groups)
        return grad(y, z, x, create_graph=True)[0]


def conv_transpose2d_differentiable_backward(x, w, g, needs: tuple, stride, offset, dilation, groups, canvas):
    """(grad_x, grad_w, grad_b) of conv_transpose2d as tensors that carry their own graph."""
    out_hw = tuple(g.shape[2:])
    return _grads_with_graph(
        lambda x, w: composite_conv_transpose2d(x, w, stride, offset, dilation, groups, out_hw, canvas), x, w, g, needs)
