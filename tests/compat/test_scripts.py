"""Each script in scripts/ is plain PyTorch; it must clear the same bars under PyTorch and under the engine,
with only its import lines rewritten."""

from __future__ import annotations

import json
import operator

import pytest
from compat_runner import HERE, REPO_ROOT, run_script

DIGITS = REPO_ROOT / "engine" / "datasets" / "data" / "digits.csv.gz"

# script, extra args, {metric the script prints: (comparison, bar)}
SCRIPTS = [
    ("mlp_spirals.py", [], {"test_accuracy": (">=", 0.95)}),
    ("cnn_batchnorm_digits.py", [str(DIGITS)], {"test_accuracy": (">=", 0.96)}),
    ("lstm_first_token.py", [], {"test_accuracy": (">=", 0.95)}),
    ("gpt_tied.py", [], {"val_loss": ("<=", 0.6)}),
    ("autoencoder.py", [], {"relative_mse": ("<=", 0.05)}),
    ("custom_function.py", [], {"test_accuracy": (">=", 0.88)}),
    ("checkpoint_resume.py", [], {"max_abs_difference": ("<=", 0.0), "val_mse": ("<=", 0.02)}),
    ("deploy_digits.py", [str(DIGITS)], {
        "float_accuracy": (">=", 0.95), "trace_max_abs_diff": ("<=", 1e-5), "fresh_process_max_abs_diff": ("<=", 1e-5),
        "onnx_max_abs_diff": ("<=", 1e-4), "dynamic_agreement": (">=", 0.97), "dynamic_classifier_size_ratio": ("<=", 0.4),
        "static_accuracy_drop": ("<=", 0.01), "static_size_ratio": ("<=", 0.45),
        "static_fresh_process_agreement": (">=", 0.99)}),
    ("packed_lstm_lengths.py", [], {"test_accuracy": (">=", 0.95)}),
    ("wgan_gp_blobs.py", [], {"bright_fraction_error": ("<=", 0.08), "mean_image_gap": ("<=", 0.25),
                              "critic_grad_norm_error": ("<=", 0.35)}),
    ("lbfgs_sine_waves.py", [], {"train_loss": ("<=", 0.002), "test_mse": ("<=", 0.002), "future_mse": ("<=", 0.02)}),
    ("gcn_sparse_adjacency.py", [], {"test_accuracy": (">=", 0.9), "sparse_dense_agreement": (">=", 1.0)}),
    ("func_per_sample_grads.py", [], {"per_sample_max_abs_diff": ("<=", 1e-5), "ensemble_max_abs_diff": ("<=", 1e-6),
                                      "test_accuracy": (">=", 0.95)}),
    ("rope_complex_attention.py", [], {"rotary_lag_accuracy": (">=", 0.95), "fft_filter_loss": ("<=", 0.002),
                                       "fft_response_error": ("<=", 0.1), "fft_param_is_complex64": (">=", True)}),
]
COMPARE = {">=": operator.ge, "<=": operator.le}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "engine", "engine-compiled"])
@pytest.mark.parametrize(("script", "args", "bars"), SCRIPTS, ids=[s[0][:-3] for s in SCRIPTS])
def test_script_clears_its_bars(script, args, bars, backend, tmp_path, request):
    if backend == "torch":
        request.getfixturevalue("torch_available")
    run = run_script(HERE / "scripts" / script, args, backend=backend, workdir=tmp_path, timeout=300)
    result = json.loads(run.last_json_line())
    for metric, (op, bar) in bars.items():
        assert COMPARE[op](result[metric], bar), f"{script} under {backend}: {metric}={result[metric]}, want {op} {bar}"


def test_every_script_is_in_the_table():
    assert sorted(p.name for p in (HERE / "scripts").glob("*.py")) == sorted(s[0] for s in SCRIPTS)
