"""PyTorch reference fixtures for the layers package (layers/parity_test.go).

Run from the repository root with Debian's Python, which has PyTorch 1.13:

    /usr/bin/python3 layers/testdata/gen/layers.py

It writes one small float32 safetensors file per case under
layers/testdata/parity/ (the directory is emptied first). Each file holds the
case's inputs and parameters, the output "y" (for CrossEntropy the scalar
"loss"), a random upstream gradient "dy" (for the loss the scalar 1), and
"grad.<input>" = d sum(y * dy) / d <input> for each differentiable input.
BatchNorm files add the running statistics before ("running_mean",
"running_var", "num_batches_tracked") and after the pass ("after.<name>").
The metadata names the op ("op") and its configuration (stride, padding,
kernel, p, smoothing, mode, ...), all as strings.

The safetensors format is written by hand (Debian has no `safetensors`
Python package): u64 little-endian header length, JSON header, data.
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity")
DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save(name, tensors, meta):
    """Writes tensors (name -> tensor) and meta (str -> any) as a safetensors file."""
    header = {"__metadata__": {k: str(v) for k, v in meta.items()}}
    chunks, offset = [], 0
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous()
        raw = t.numpy().tobytes()
        header[key] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def case(name, meta, fn, inputs, diff, extra=None):
    """Runs y = fn(**inputs), backpropagates a random dy, and saves the case.

    diff lists the inputs to differentiate; extra holds more tensors to save.
    """
    leaves = {k: (v.clone().requires_grad_(True) if k in diff else v.clone()) for k, v in inputs.items()}
    y = fn(**leaves)
    dy = torch.ones(()) if y.dim() == 0 else torch.randn(y.shape)
    (y * dy).sum().backward()
    tensors = dict(inputs)
    tensors["loss" if y.dim() == 0 else "y"] = y
    tensors["dy"] = dy
    for k in diff:
        tensors["grad." + k] = leaves[k].grad
    tensors.update(extra or {})
    save(name, tensors, meta)


def conv_cases():
    specs = [
        # name, x shape, out channels, kernel, stride, padding, bias
        ("conv2d_3x3_s1_p1_bias", (2, 3, 6, 6), 4, 3, 1, 1, True),
        ("conv2d_3x3_s2_p0_nobias", (2, 3, 7, 7), 5, 3, 2, 0, False),
        ("conv2d_1x1_bias", (2, 4, 5, 5), 3, 1, 1, 0, True),
        ("conv2d_nonsquare_p1_bias", (2, 3, 5, 8), 4, 3, 1, 1, True),
    ]
    for name, xs, o, k, s, p, bias in specs:
        inputs = {"x": torch.randn(xs), "w": torch.randn(o, xs[1], k, k) * 0.3}
        if bias:
            inputs["b"] = torch.randn(o)
        case(name, {"op": "Conv2d", "stride": s, "padding": p},
             lambda x, w, b=None: F.conv2d(x, w, b, stride=s, padding=p), inputs, list(inputs))


def linear_cases():
    x, w, b = torch.randn(5, 6), torch.randn(4, 6) * 0.4, torch.randn(4)
    case("linear_bias", {"op": "Linear"}, lambda x, w, b: F.linear(x, w, b), {"x": x, "w": w, "b": b}, ["x", "w", "b"])
    case("linear_nobias", {"op": "Linear"}, lambda x, w: F.linear(x, w), {"x": x, "w": w}, ["x", "w"])


def relu_case():
    x = torch.randn(3, 4, 5)
    x.view(-1)[::7] = 0.0  # exact zeros: PyTorch's gradient there is 0
    case("relu", {"op": "ReLU"}, lambda x: F.relu(x), {"x": x}, ["x"])


def maxpool_cases():
    specs = [
        ("maxpool2d_2x2_s2", (2, 3, 6, 6), 2, 2, 0),
        ("maxpool2d_3x3_s2_p1", (2, 3, 7, 7), 3, 2, 1),
        ("maxpool2d_2x2_s2_odd", (2, 2, 7, 5), 2, 2, 0),
    ]
    for name, xs, k, s, p in specs:
        case(name, {"op": "MaxPool2d", "kernel": k, "stride": s, "padding": p},
             lambda x: F.max_pool2d(x, k, s, p), {"x": torch.randn(xs)}, ["x"])


def adaptive_cases():
    specs = [((4, 4), (2, 2)), ((5, 7), (3, 2)), ((1, 1), (7, 7)), ((3, 3), (7, 7))]
    for (h, w), (oh, ow) in specs:
        case(f"adaptiveavgpool2d_{h}x{w}_to_{oh}x{ow}", {"op": "AdaptiveAvgPool2d", "out_h": oh, "out_w": ow},
             lambda x: F.adaptive_avg_pool2d(x, (oh, ow)), {"x": torch.randn(2, 3, h, w)}, ["x"])


def batchnorm_cases():
    c, momentum, eps = 3, 0.1, 1e-5
    x = torch.randn(4, c, 5, 5) * 2.0 + 0.5
    gamma, beta = 1.0 + 0.3 * torch.randn(c), 0.2 * torch.randn(c)
    mean0, var0 = 0.5 * torch.randn(c), 0.5 + torch.rand(c)
    for mode in ("train", "eval"):
        rm, rv = mean0.clone(), var0.clone()
        nbt = torch.tensor(3, dtype=torch.int64)
        train = mode == "train"

        def fn(x, gamma, beta):
            return F.batch_norm(x, rm, rv, gamma, beta, training=train, momentum=momentum, eps=eps)

        if train:
            nbt = nbt + 1  # what nn.BatchNorm2d.forward does in training
        case(f"batchnorm2d_{mode}", {"op": "BatchNorm2d", "mode": mode, "momentum": momentum, "eps": eps},
             fn, {"x": x, "gamma": gamma, "beta": beta}, ["x", "gamma", "beta"],
             extra={"running_mean": mean0, "running_var": var0, "num_batches_tracked": torch.tensor(3),
                    "after.running_mean": rm, "after.running_var": rv, "after.num_batches_tracked": nbt})


def flatten_case():
    case("flatten", {"op": "Flatten"}, lambda x: torch.flatten(x, 1), {"x": torch.randn(2, 3, 2, 2)}, ["x"])


def cross_entropy_cases():
    logits = torch.randn(5, 7) * 2.0
    labels = torch.tensor([0, 6, 3, 3, 1])
    for smoothing in (0.0, 0.1):
        case(f"crossentropy_smoothing_{smoothing}", {"op": "CrossEntropy", "smoothing": smoothing},
             lambda logits: F.cross_entropy(logits, labels, label_smoothing=smoothing),
             {"logits": logits}, ["logits"], extra={"labels": labels})


def dropout_cases():
    p = 0.3
    x = torch.rand(4, 50) + 0.5  # no zeros: grad = y / x identifies the mask
    for mode in ("train", "eval"):
        case(f"dropout_{mode}", {"op": "Dropout", "p": p, "mode": mode},
             lambda x: F.dropout(x, p, training=mode == "train"), {"x": x}, ["x"])


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    conv_cases()
    linear_cases()
    relu_case()
    maxpool_cases()
    adaptive_cases()
    batchnorm_cases()
    flatten_case()
    cross_entropy_cases()
    dropout_cases()


if __name__ == "__main__":
    main()
