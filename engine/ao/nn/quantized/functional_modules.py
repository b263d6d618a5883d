"""``FloatFunctional`` (observable float add/mul/cat) and ``QFunctional``, its quantized form."""

from __future__ import annotations

from engine import nn
from engine.ao.nn.quantized import ops as qops
from engine.ops.shape import cat as _cat


class FloatFunctional(nn.Module):
    """Float ``add``/``mul``/``cat``/``add_relu`` whose outputs an observer can watch after ``prepare``."""

    def __init__(self):
        super().__init__()
        self.activation_post_process = nn.Identity()

    def forward(self, x):
        raise RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use the underlying "
                           "operation")

    def add(self, x, y):
        return self.activation_post_process(x + y)

    def add_scalar(self, x, y):
        return x + y

    def mul(self, x, y):
        return self.activation_post_process(x * y)

    def mul_scalar(self, x, y):
        return x * y

    def cat(self, x, dim: int = 0):
        return self.activation_post_process(_cat(x, dim))

    def add_relu(self, x, y):
        return self.activation_post_process((x + y).relu())


class QFunctional(nn.Module):
    """Quantized ``add``/``mul``/``cat``/``add_relu``: dequantize, compute in float32, requantize."""

    def __init__(self):
        super().__init__()
        self.scale, self.zero_point = 1.0, 0

    def forward(self, x):
        raise RuntimeError("QFunctional is not intended to use the 'forward'. Please use the underlying operation")

    def add(self, x, y):
        return qops.add(x, y, self.scale, self.zero_point)

    def add_relu(self, x, y):
        return qops.add(x, y, self.scale, self.zero_point, True)

    def mul(self, x, y):
        return qops.mul(x, y, self.scale, self.zero_point)

    def cat(self, x, dim: int = 0):
        return qops.cat(x, dim, self.scale, self.zero_point)

    def add_scalar(self, x, y):
        return qops.add_scalar(x, y, self.scale, self.zero_point)

    def mul_scalar(self, x, y):
        return qops.mul_scalar(x, y, self.scale, self.zero_point)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        q = cls()
        q.scale, q.zero_point = float(scale.item()), int(zero_point.item())
        return q

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        from engine.ao.nn.quantized.modules import _scalar_tensor

        destination[prefix + "scale"] = _scalar_tensor(self.scale, "float64")
        destination[prefix + "zero_point"] = _scalar_tensor(self.zero_point, "int64")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs, assign=False):
        for key in ("scale", "zero_point"):
            if prefix + key not in state_dict:
                missing_keys.append(prefix + key)
                return
        self.scale = float(state_dict[prefix + "scale"].item())
        self.zero_point = int(state_dict[prefix + "zero_point"].item())
