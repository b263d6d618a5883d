"""Kiln's engine: a PyTorch-style deep-learning library on NumPy (CPU) and CuPy (GPU).

``import engine as torch`` gives the familiar names: tensors, autograd, creation functions and ops.

Example:
    >>> import engine
    >>> x = engine.randn(3, requires_grad=True)
    >>> (x.exp() * 2).sum().backward()
    >>> x.grad.shape
    engine.Size([3])
"""

from engine import autograd, backend, cuda, return_types
from engine import tensor_methods as _tensor_methods
from engine.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from engine.creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    scalar_tensor,
    tensor,
    zeros,
    zeros_like,
)
from engine.device import device
from engine.dtypes import (
    bfloat16,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    set_default_dtype,
    uint8,
)
from engine.dtypes import bool_ as bool
from engine.ops.activation import (
    elu,
    gelu,
    hardtanh,
    leaky_relu,
    log_softmax,
    mish,
    relu,
    relu6,
    silu,
    softmax,
    softplus,
)
from engine.ops.arithmetic import (
    add,
    addcdiv,
    addcmul,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    div,
    divide,
    float_power,
    floor_divide,
    fmax,
    fmin,
    fmod,
    lerp,
    maximum,
    minimum,
    mul,
    multiply,
    pow,
    remainder,
    rsub,
    sub,
    subtract,
    true_divide,
    where,
)
from engine.ops.comparison import (
    allclose,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    eq,
    equal,
    ge,
    greater,
    greater_equal,
    gt,
    isclose,
    le,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
    not_equal,
)
from engine.ops.conversion import clone
from engine.ops.diagonal import diag, diag_embed, diagonal
from engine.ops.indexing import (
    argwhere,
    gather,
    index_select,
    masked_fill,
    masked_select,
    nonzero,
    scatter,
    scatter_add,
    take_along_dim,
)
from engine.ops.linalg import addmm, addmv, baddbmm, bmm, dot, einsum, ger, inner, matmul, mm, mv, outer
from engine.ops.promotion import result_type
from engine.ops.reduction import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumprod,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    std_mean,
    sum,
    var,
    var_mean,
)
from engine.ops.rnn import gru, lstm, rnn_relu, rnn_tanh
from engine.ops.shape import (
    atleast_1d,
    atleast_2d,
    broadcast_shapes,
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    flatten,
    flip,
    fliplr,
    flipud,
    hstack,
    moveaxis,
    movedim,
    narrow,
    permute,
    repeat_interleave,
    reshape,
    roll,
    select,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    tile,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unsqueeze,
    vstack,
)
from engine.ops.sorting import argsort, kthvalue, msort, sort, topk
from engine.ops.unary import (
    abs,
    absolute,
    arctan,
    atan,
    ceil,
    cos,
    erf,
    exp,
    expm1,
    fix,
    floor,
    frac,
    isfinite,
    isinf,
    isnan,
    log,
    log1p,
    log2,
    log10,
    nan_to_num,
    neg,
    negative,
    reciprocal,
    round,
    rsqrt,
    sigmoid,
    sign,
    signbit,
    sin,
    sqrt,
    square,
    tan,
    tanh,
    trunc,
)
from engine.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from engine.tensor import Size, Tensor, is_tensor
from engine.type_info import finfo, iinfo

_tensor_methods.install()

# PyTorch's tensor-type aliases
FloatTensor = DoubleTensor = LongTensor = Tensor
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


def is_complex(input: Tensor) -> bool:
    return input.is_complex()


def numel(input: Tensor) -> int:
    return input.numel()


def detach(input: Tensor) -> Tensor:
    return input.detach()

__all__ = [
    "DoubleTensor",
    "FloatTensor",
    "Generator",
    "LongTensor",
    "Size",
    "Tensor",
    "abs",
    "absolute",
    "add",
    "addcdiv",
    "addcmul",
    "addmm",
    "addmv",
    "all",
    "allclose",
    "amax",
    "amin",
    "any",
    "arange",
    "arctan",
    "argmax",
    "argmin",
    "argsort",
    "argwhere",
    "as_tensor",
    "atan",
    "atleast_1d",
    "atleast_2d",
    "autograd",
    "backend",
    "baddbmm",
    "bernoulli",
    "bfloat16",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "bmm",
    "bool",
    "broadcast_shapes",
    "broadcast_tensors",
    "broadcast_to",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clamp_max",
    "clamp_min",
    "clip",
    "clone",
    "concat",
    "concatenate",
    "cos",
    "count_nonzero",
    "cuda",
    "cumprod",
    "cumsum",
    "default_generator",
    "detach",
    "device",
    "diag",
    "diag_embed",
    "diagonal",
    "div",
    "divide",
    "dot",
    "double",
    "dtype",
    "einsum",
    "elu",
    "empty",
    "empty_like",
    "enable_grad",
    "eq",
    "equal",
    "erf",
    "exp",
    "expm1",
    "eye",
    "finfo",
    "fix",
    "flatten",
    "flip",
    "fliplr",
    "flipud",
    "float",
    "float16",
    "float32",
    "float64",
    "float_power",
    "floor",
    "floor_divide",
    "fmax",
    "fmin",
    "fmod",
    "frac",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "gelu",
    "ger",
    "get_default_dtype",
    "get_rng_state",
    "greater",
    "greater_equal",
    "gru",
    "gt",
    "half",
    "hardtanh",
    "hstack",
    "iinfo",
    "index_select",
    "inference_mode",
    "initial_seed",
    "inner",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_floating_point",
    "is_grad_enabled",
    "is_tensor",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "kthvalue",
    "le",
    "leaky_relu",
    "lerp",
    "less",
    "less_equal",
    "linspace",
    "log",
    "log1p",
    "log2",
    "log10",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logspace",
    "logsumexp",
    "long",
    "lstm",
    "lt",
    "manual_seed",
    "masked_fill",
    "masked_select",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mish",
    "mm",
    "moveaxis",
    "movedim",
    "msort",
    "mul",
    "multinomial",
    "multiply",
    "mv",
    "nan_to_num",
    "narrow",
    "ne",
    "neg",
    "negative",
    "no_grad",
    "nonzero",
    "norm",
    "normal",
    "not_equal",
    "numel",
    "ones",
    "ones_like",
    "outer",
    "permute",
    "pow",
    "prod",
    "promote_types",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "randperm",
    "reciprocal",
    "relu",
    "relu6",
    "remainder",
    "repeat_interleave",
    "reshape",
    "result_type",
    "return_types",
    "rnn_relu",
    "rnn_tanh",
    "roll",
    "round",
    "rsqrt",
    "rsub",
    "scalar_tensor",
    "scatter",
    "scatter_add",
    "seed",
    "select",
    "set_default_dtype",
    "set_grad_enabled",
    "set_rng_state",
    "short",
    "sigmoid",
    "sign",
    "signbit",
    "silu",
    "sin",
    "softmax",
    "softplus",
    "sort",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "std_mean",
    "sub",
    "subtract",
    "sum",
    "swapaxes",
    "swapdims",
    "t",
    "take_along_dim",
    "tan",
    "tanh",
    "tensor",
    "tile",
    "topk",
    "transpose",
    "tril",
    "triu",
    "true_divide",
    "trunc",
    "uint8",
    "unbind",
    "unflatten",
    "unsqueeze",
    "var",
    "var_mean",
    "vstack",
    "where",
    "zeros",
    "zeros_like",
]


# --- training stack ---
from engine import amp, optim, utils  # noqa: E402 - after the core names these modules use
from engine.amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402
from engine.serialization import load, save  # noqa: E402

__all__ += ["amp", "autocast", "get_autocast_dtype", "is_autocast_enabled", "load", "optim", "save", "utils"]
from engine import accelerator, hub  # noqa: E402 - torch.accelerator (over engine.cuda), torch.hub weights
from engine.threads import get_num_threads, set_num_threads  # noqa: E402

__all__ += ["accelerator", "get_num_threads", "hub", "set_num_threads"]
from engine import linalg  # noqa: E402 - torch.linalg: decompositions, solvers, norms (with autograd)
from engine.linalg.toplevel import (  # noqa: E402 - torch.det, torch.svd, torch.inverse ... (older spellings)
    chain_matmul,
    cholesky,
    cholesky_inverse,
    cholesky_solve,
    cross,
    det,
    geqrf,
    inverse,
    logdet,
    lu,
    lu_solve,
    lu_unpack,
    matrix_exp,
    matrix_power,
    orgqr,
    ormqr,
    pinverse,
    qr,
    slogdet,
    svd,
    triangular_solve,
    vander,
)
from engine.linalg.toplevel import install_methods as _install_linalg_methods  # noqa: E402

_install_linalg_methods()
__all__ += ["chain_matmul", "cholesky", "cholesky_inverse", "cholesky_solve", "cross", "det", "geqrf", "inverse",
            "linalg", "logdet", "lu", "lu_solve", "lu_unpack", "matrix_exp", "matrix_power", "orgqr", "ormqr",
            "pinverse", "qr", "slogdet", "svd", "triangular_solve", "vander"]


# --- nn ---
from engine import nn  # noqa: E402 - nn builds on everything above

__all__ += ["nn"]
from engine import func  # noqa: E402 - torch.func transforms

__all__ += ["func"]
from engine import distributions  # noqa: E402 - torch.distributions: sampling, log_prob, kl_divergence

__all__ += ["distributions"]
from engine import distributed, multiprocessing  # noqa: E402 - as torch.distributed; builds on nn

__all__ += ["distributed", "multiprocessing"]


# --- quantization (engine.ao) ---
from engine import ao  # noqa: E402 - ao builds on nn
from engine.ao.quantization.qtensor import (  # noqa: E402
    dequantize,
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qscheme,
    quantize_per_channel,
    quantize_per_tensor,
)
from engine.dtypes import qint8, qint32, quint8  # noqa: E402

__all__ += ["ao", "dequantize", "per_channel_affine", "per_channel_affine_float_qparams", "per_channel_symmetric",
            "per_tensor_affine", "per_tensor_symmetric", "qint8", "qint32", "qscheme", "quantize_per_channel",
            "quantize_per_tensor", "quint8"]


# --- complex numbers and torch.fft ---
from engine import fft  # noqa: E402
from engine.dtypes import complex64, complex128  # noqa: E402
from engine.dtypes import complex64 as cfloat  # noqa: E402
from engine.dtypes import complex128 as cdouble  # noqa: E402
from engine.ops.complex import (  # noqa: E402
    angle,
    complex,
    conj,
    conj_physical,
    imag,
    is_conj,
    is_neg,
    polar,
    real,
    resolve_conj,
    resolve_neg,
    sgn,
    view_as_complex,
    view_as_real,
)
from engine.ops.complex import install_methods as _install_complex_methods  # noqa: E402

_install_complex_methods()
__all__ += [
    "angle",
    "cdouble",
    "cfloat",
    "complex",
    "complex64",
    "complex128",
    "conj",
    "conj_physical",
    "fft",
    "imag",
    "is_complex",
    "is_conj",
    "is_neg",
    "polar",
    "real",
    "resolve_conj",
    "resolve_neg",
    "sgn",
    "view_as_complex",
    "view_as_real",
]

# --- graph capture: the op registry wraps every op defined above, so it comes last ---
from engine import fx  # noqa: E402

fx.registry.install()
from engine import export, jit, onnx  # noqa: E402

__all__ += ["export", "fx", "jit", "onnx"]
from engine import backends  # noqa: E402 - torch.backends: kernel settings (engine.backends.quantized ...)

__all__ += ["backends"]

# --- engine.compile (capture with guards, replay, fused backends) ---
from engine import _dynamo, compiler  # noqa: E402, F401 - _dynamo: torch._dynamo (explain, reset, config)
from engine._dynamo.eval_frame import compile  # noqa: E402

__all__ += ["compile", "compiler"]

# --- torch.sparse (COO) and torch.special; sparse guards the Tensor methods defined above ---
from engine import sparse, special  # noqa: E402
from engine.sparse import layout, sparse_coo, sparse_coo_tensor, spmm, strided  # noqa: E402

sparse.install_methods()
__all__ += ["layout", "sparse", "sparse_coo", "sparse_coo_tensor", "special", "spmm", "strided"]
