"""Deploy a digits CNN as PyTorch's docs do: TorchScript, ONNX, dynamic and static int8 quantization.

torch.jit.trace -> torch.jit.save -> torch.jit.load in a fresh process (which never defines the
model's class); torch.onnx.export with dynamic_axes run in onnxruntime at another batch size;
torch.ao.quantization.quantize_dynamic of the Linear layers; eager static post-training
quantization (fuse_modules, get_default_qconfig, prepare, calibrate, convert), traced and reloaded.

    python deploy_digits.py DIGITS_CSV_GZ    (prints one JSON line of measurements last)
    python deploy_digits.py --serve MODEL_PT INPUT_NPY OUTPUT_NPY    (the fresh process)
"""

import gzip
import io
import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
from torch.ao.quantization import (
    DeQuantStub,
    QuantStub,
    convert,
    fuse_modules,
    get_default_qconfig,
    prepare,
    quantize_dynamic,
)


def serve(model_path, input_path, output_path):
    """The fresh process: load the TorchScript file and run it; no model class exists here."""
    model = torch.jit.load(model_path)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(input_path)))
    np.save(output_path, logits.numpy())


def load_digits(path):
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    images = (table[:, :64].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(0).permutation(len(table))
    test, train = order[:360], order[360:]
    return ((torch.from_numpy(images[train]), torch.from_numpy(table[train, 64])),
            (torch.from_numpy(images[test]), torch.from_numpy(table[test, 64])))


def build_and_train(train):
    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = QuantStub()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10))
            self.dequant = DeQuantStub()

        def forward(self, x):
            return self.dequant(self.classifier(self.features(self.quant(x))))

    torch.manual_seed(0)
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = train
    for _ in range(8):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def predictions(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def state_bytes(module):
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return len(buffer.getvalue())


def in_fresh_process(path, x):
    np.save("input.npy", x.numpy())
    subprocess.run([sys.executable, __file__, "--serve", path, "input.npy", "output.npy"], check=True)
    return torch.from_numpy(np.load("output.npy"))


def main(digits_path):
    train, (test_x, test_y) = load_digits(digits_path)
    model = build_and_train(train)
    float_accuracy = (predictions(model, test_x) == test_y).float().mean().item()
    results = {"float_accuracy": float_accuracy}

    # TorchScript: traced at batch 4, run at the whole test set, saved and loaded in a fresh process
    traced = torch.jit.trace(model, test_x[:4])
    torch.jit.save(traced, "digits_cnn.pt")
    with torch.no_grad():
        eager = model(test_x)
        results["trace_max_abs_diff"] = (traced(test_x) - eager).abs().max().item()
    results["fresh_process_max_abs_diff"] = (in_fresh_process("digits_cnn.pt", test_x) - eager).abs().max().item()

    # ONNX with a dynamic batch dimension, run by onnxruntime
    torch.onnx.export(model, (test_x[:4],), "digits_cnn.onnx", input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession("digits_cnn.onnx", providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"image": test_x.numpy()})
    results["onnx_max_abs_diff"] = float(np.abs(onnx_logits - eager.numpy()).max())

    # dynamic quantization of the Linear layers
    dynamic = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    results["dynamic_agreement"] = (predictions(dynamic, test_x) == predictions(model, test_x)).float().mean().item()
    results["dynamic_classifier_size_ratio"] = state_bytes(dynamic.classifier) / state_bytes(model.classifier)

    # static post-training quantization: fuse, observe, calibrate, convert
    torch.backends.quantized.engine = "x86"
    fused = fuse_modules(model, [["features.0", "features.1", "features.2"], ["features.4", "features.5", "features.6"],
                                 ["classifier.1", "classifier.2"]])
    fused.qconfig = get_default_qconfig("x86")
    prepared = prepare(fused)
    with torch.no_grad():
        prepared(train[0][:512])
    quantized = convert(prepared)
    static_predictions = predictions(quantized, test_x)
    results["static_accuracy_drop"] = float_accuracy - (static_predictions == test_y).float().mean().item()
    results["static_size_ratio"] = state_bytes(quantized) / state_bytes(model)
    torch.jit.save(torch.jit.trace(quantized, test_x[:4]), "digits_cnn_int8.pt")
    reloaded = in_fresh_process("digits_cnn_int8.pt", test_x).argmax(1)
    results["static_fresh_process_agreement"] = (reloaded == static_predictions).float().mean().item()
    print(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(*sys.argv[2:5])
    else:
        main(sys.argv[1])
