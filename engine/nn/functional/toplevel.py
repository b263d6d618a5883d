"""``torch.conv2d``, ``torch.layer_norm``, ``torch.dropout`` ...: the ATen spellings of ``nn.functional``.

PyTorch exposes its native ops at the top level with their ATen signatures, which differ from
``nn.functional`` in places: losses take ``reduction`` as an int (0 none, 1 mean, 2 sum), dropout takes
``train`` positionally, ``embedding`` takes the weight first, the norms take a trailing cudnn flag.
Each adapter maps that signature onto the one implementation in ``nn.functional``.
"""

from __future__ import annotations

from engine.nn import functional as F

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _reduction(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return _REDUCTIONS[int(value)]
    except KeyError:
        raise ValueError(f"{value} is not a valid value for reduction") from None


conv1d, conv2d, conv3d = F.conv1d, F.conv2d, F.conv3d
conv_transpose1d, conv_transpose2d, conv_transpose3d = F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d
avg_pool1d = F.avg_pool1d
max_pool1d, max_pool2d, max_pool3d = F.max_pool1d, F.max_pool2d, F.max_pool3d
max_pool1d_with_indices = F.max_pool1d_with_indices
adaptive_avg_pool1d = F.adaptive_avg_pool1d
celu, celu_, selu, selu_ = F.celu, F.celu_, F.selu, F.selu_
rrelu, rrelu_, prelu, hardshrink = F.rrelu, F.rrelu_, F.prelu, F.hardshrink
threshold, threshold_ = F.threshold, F.threshold_
pixel_shuffle, pixel_unshuffle, channel_shuffle = F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle
pdist, pairwise_distance, cosine_similarity = F.pdist, F.pairwise_distance, F.cosine_similarity
bilinear, rms_norm = F.bilinear, F.rms_norm


def adaptive_max_pool1d(input, output_size):
    """``(values, indices)``: the ATen form always returns the indices."""
    return F.adaptive_max_pool1d_with_indices(input, output_size, True)


def constant_pad_nd(input, pad, value=0):
    return F.pad(input, pad, "constant", value)


def embedding(weight, indices, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False):
    """The ATen argument order: ``weight`` first; ``padding_idx=-1`` means none."""
    return F.embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                       scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5, cudnn_enable: bool = True):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5, cudnn_enabled: bool = True):
    return F.group_norm(input, num_groups, weight, bias, eps)


def batch_norm(input, weight, bias, running_mean, running_var, training: bool, momentum: float, eps: float,
               cudnn_enabled: bool = True):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats: bool, momentum: float,
                  eps: float, cudnn_enabled: bool = True):
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def dropout(input, p: float, train: bool):
    return F.dropout(input, p, train)


def dropout_(input, p: float, train: bool):
    return F.dropout(input, p, train, inplace=True)


def alpha_dropout(input, p: float, train: bool):
    return F.alpha_dropout(input, p, train)


def alpha_dropout_(input, p: float, train: bool):
    return F.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout(input, p: float, train: bool):
    return F.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input, p: float, train: bool):
    return F.feature_alpha_dropout(input, p, train, inplace=True)


def _feature_dropout(input, p: float, train: bool, inplace: bool):
    # NOTE: whole channels (dim 1) are zeroed, for any input with a batch dim
    if input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if not train or p == 0:
        return input
    return _drop_channels(input, p, inplace)


def _drop_channels(input, p: float, inplace: bool):
    from engine.creation import bernoulli, full

    keep = bernoulli(full((*input.shape[:2], *([1] * (input.dim() - 2))), 1 - p, dtype=input.dtype,
                          device=input.device))
    scaled = input * keep / (1 - p) if p < 1 else input * 0
    return input.copy_(scaled) if inplace else scaled


def feature_dropout(input, p: float, train: bool):
    return _feature_dropout(input, p, train, False)


def feature_dropout_(input, p: float, train: bool):
    return _feature_dropout(input, p, train, True)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                              pos_weight=pos_weight)


def kl_div(input, target, reduction=1, *, log_target: bool = False):
    return F.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def poisson_nll_loss(input, target, log_input: bool, full: bool, eps: float, reduction):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, reduction=1):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, reduction=1):
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction=1):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction=1):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def cdist(x1, x2, p: float = 2.0, compute_mode=None):
    """Pairwise ``p``-norm distances between the rows of ``x1`` and ``x2`` (batched over leading dims)."""
    from engine.linalg import vector_norm

    if x1.dim() < 2 or x2.dim() < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.dim()}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    return vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, dim=-1)


relu_ = F.relu_


def frobenius_norm(input, dim=(-2, -1), keepdim: bool = False):
    """Deprecated in PyTorch: ``linalg.vector_norm(input, 2, dim, keepdim)``."""
    from engine.linalg import vector_norm

    return vector_norm(input, 2, dim=dim, keepdim=keepdim)


def nuclear_norm(input, dim=(-2, -1), keepdim: bool = False):
    """Deprecated in PyTorch: ``linalg.matrix_norm(input, "nuc", dim, keepdim)``."""
    from engine.linalg import matrix_norm

    if isinstance(dim, bool):  # the ATen overload nuclear_norm(input, keepdim)
        dim, keepdim = (-2, -1), dim
    return matrix_norm(input, "nuc", dim=tuple(dim), keepdim=keepdim)


# ----- single recurrent steps (torch.lstm_cell ...), PyTorch's gate layout -------------------------------
def _gates(input, hx, w_ih, w_hh, b_ih, b_hh):
    return F.linear(input, w_ih, b_ih) + F.linear(hx, w_hh, b_hh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: ``(h', c')`` from ``hx = (h, c)``; gates in PyTorch's order i, f, g, o."""
    h, c = hx
    i, f, g, o = _gates(input, h, w_ih, w_hh, b_ih, b_hh).chunk(4, 1)
    c_next = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c_next.tanh(), c_next


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step; gates in PyTorch's order r, z, n (the reset gate scales the hidden part of n)."""
    x_r, x_z, x_n = F.linear(input, w_ih, b_ih).chunk(3, 1)
    h_r, h_z, h_n = F.linear(hx, w_hh, b_hh).chunk(3, 1)
    r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * hx


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return _gates(input, hx, w_ih, w_hh, b_ih, b_hh).tanh()


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    return F.relu(_gates(input, hx, w_ih, w_hh, b_ih, b_hh))


def convolution(input, weight, bias, stride, padding, dilation, transposed: bool, output_padding, groups: int):
    """ATen's one convolution entry: the 1/2/3-d (transposed) convolution that ``weight``'s rank picks."""
    spatial = weight.dim() - 2
    if spatial not in (1, 2, 3):
        raise RuntimeError(f"convolution: expected a 3-, 4- or 5-d weight, got {weight.dim()}-d")
    if transposed:
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[spatial - 1]
        return fn(input, weight, bias, stride, padding, output_padding, groups, dilation)
    fn = (F.conv1d, F.conv2d, F.conv3d)[spatial - 1]
    return fn(input, weight, bias, stride, padding, dilation, groups)
