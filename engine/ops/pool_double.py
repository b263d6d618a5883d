"""Double backward through max_pool2d and avg_pool2d: their backward is linear in the incoming gradient
(max pooling routes it to the argmax, average pooling spreads it), so under ``create_graph`` that linear map
is rebuilt from differentiable ops (pad, strided slices) and its VJP taken with a graph of its own."""

from __future__ import annotations

from engine.autograd.grad_mode import enable_grad


def _taps(padded, kernel, stride, dilation, out_hw):
    ho, wo = out_hw
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r, q = i * dilation[0], j * dilation[1]
            yield padded[:, :, r:r + stride[0] * (ho - 1) + 1:stride[0], q:q + stride[1] * (wo - 1) + 1:stride[1]]


def _vjp_of_linear(pooled, g, shape, pads, device, dtype):
    """The gradient of ``pooled(x)`` (linear in x) at any x, against ``g``, as a differentiable function of g."""
    from engine.autograd.graph import grad
    from engine.creation import zeros
    from engine.nn.functional import pad

    top, bottom, left, right = pads
    with enable_grad():
        leaf = zeros(*shape, dtype=dtype, device=device, requires_grad=True)
        out = pooled(pad(leaf, (left, right, top, bottom)) if any(pads) else leaf)
        return grad(out, leaf, g, create_graph=True)[0]


def max_pool2d_differentiable_backward(g, arg, shape, kernel, stride, pads, dilation):
    """The input gradient of max_pool2d for ``g``: each output's gradient at its window's argmax (``arg``)."""
    from engine.tensor import wrap

    out_hw = g.shape[2:]
    masks = [wrap((arg == k).astype(g._data.dtype), g._device) for k in range(kernel[0] * kernel[1])]

    def pooled(padded):
        return sum(m * tap for m, tap in zip(masks, _taps(padded, kernel, stride, dilation, out_hw), strict=True))

    return _vjp_of_linear(pooled, g, shape, pads, g._device, g._dtype)


def avg_pool2d_differentiable_backward(g, shape, kernel, stride, pads, divisor):
    """The input gradient of avg_pool2d for ``g``: each output's gradient shared over its window."""
    from engine.tensor import wrap

    out_hw = g.shape[2:]
    scale = wrap(1.0 / divisor, g._device) if hasattr(divisor, "shape") else 1.0 / divisor

    def pooled(padded):
        return sum(_taps(padded, kernel, stride, (1, 1), out_hw)) * scale

    return _vjp_of_linear(pooled, g, shape, pads, g._device, g._dtype)
