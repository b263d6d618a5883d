"""Under autocast, layers run matmul-like work in the low dtype and keep losses/normalisation in float32."""

import engine
import engine.nn as nn
import engine.nn.functional as F


def test_linear_and_conv_run_in_bfloat16_and_the_loss_in_float32():
    engine.manual_seed(0)
    linear, conv = nn.Linear(8, 4), nn.Conv2d(3, 2, 3, padding=1)
    x, images = engine.randn(5, 8), engine.randn(2, 3, 6, 6)
    with engine.autocast("cpu", dtype=engine.bfloat16):
        logits = linear(x)
        features = conv(images)
        normed = F.layer_norm(logits, (4,))
        loss = F.cross_entropy(logits, engine.tensor([0, 1, 2, 3, 0]))
    assert logits.dtype == engine.bfloat16 and features.dtype == engine.bfloat16
    assert normed.dtype == engine.float32 and loss.dtype == engine.float32
    loss.backward()
    assert linear.weight.grad.dtype == engine.float32  # gradients reach the float32 master weights


def test_outside_autocast_nothing_is_cast():
    linear = nn.Linear(8, 4)
    assert linear(engine.randn(2, 8)).dtype == engine.float32
