"""PyTorch reference fixtures for whole VGG models (zoo/vgg's parity test).

Run from the repository root with Debian's Python, which has PyTorch 1.13
and torchvision 0.14:

    /usr/bin/python3 zoo/vgg/testdata/gen/vgg.py

It writes one safetensors file per case under zoo/vgg/testdata/parity/
(the directory's .safetensors files are replaced) and prints, for each case,
how far the float32 reference is from the same computation in float64 (the
error a float32 implementation can be expected to show).

Models are torchvision's VGG: `torchvision.models.vgg.make_layers` on
`cfgs` with every channel count c scaled to max(1, floor(c*width + 0.5)),
then either the "cifar" head (flatten after the last pool, classifier.0 =
Linear(C_last, classes)) or torchvision's "imagenet" head (avgpool =
AdaptiveAvgPool2d((7, 7)), classifier.0..6 = Linear, ReLU, Dropout, Linear,
ReLU, Dropout, Linear with hidden = max(1, floor(4096*width + 0.5))).

Each file holds, all float32 except the int64 labels and num_batches_tracked:
  <name>          every state_dict tensor, before the step
  input           (4, 3, 32, 32)
  labels          (4) int64
  logits          (4, classes)
  loss            () mean cross-entropy of logits and labels
  grad.input      d loss / d input
  grad.<name>     d loss / d parameter, for every trainable parameter
  after.<name>    train mode with BatchNorm only: running_mean, running_var
                  and num_batches_tracked after the one forward pass
and metadata: model, width, head, classes, mode ("train"/"eval"), batch,
hidden (imagenet head only).

In train mode with BatchNorm a convolution's bias does not change the output
(BatchNorm subtracts the batch mean), so its gradient is exactly 0 and the
float32 reference holds rounding noise (|g| < 1e-6): compare those
gradients with an absolute tolerance, not relative to their own size.

Dropout is built with p = 0, so train-mode cases with the imagenet head
compare deterministically (gozoo's model is built with vgg.NoDropout).

Widths: the total must stay near 3 MB (the files are committed), so only
vgg11_bn in train mode has width 0.125; the others are smaller (0.07 also
exercises the rounding of channel counts: 64 -> 4, 128 -> 9, 256 -> 18,
512 -> 36; 0.025 gives 2, 3, 6, 13 and hidden 102).
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vgg import cfgs, make_layers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64"}
MODELS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}

# name, model, width, head, mode
CASES = [
    ("vgg11_bn_cifar_train", "vgg11_bn", 0.125, "cifar", "train"),
    ("vgg11_bn_cifar_eval", "vgg11_bn", 0.07, "cifar", "eval"),
    ("vgg16_cifar", "vgg16", 0.0625, "cifar", "train"),
    ("vgg11_imagenet_eval", "vgg11", 0.025, "imagenet", "eval"),
    ("vgg13_bn_imagenet_train", "vgg13_bn", 0.03, "imagenet", "train"),
    ("vgg19_cifar_eval", "vgg19", 0.03, "cifar", "eval"),
    ("vgg19_bn_cifar_train", "vgg19_bn", 0.03, "cifar", "train"),
]
BATCH, CLASSES, SIZE = 4, 10, 32


def scale(c, width):
    return max(1, math.floor(c * width + 0.5))


class VGG(nn.Module):
    """torchvision's VGG with a width multiplier and a choice of head."""

    def __init__(self, model, width, head, classes):
        super().__init__()
        base, bn = model.removesuffix("_bn"), model.endswith("_bn")
        cfg = [v if v == "M" else scale(v, width) for v in cfgs[MODELS[base]]]
        self.features = make_layers(cfg, batch_norm=bn)
        last = cfg[-2]
        self.head = head
        if head == "cifar":
            self.classifier = nn.Sequential(nn.Linear(last * (SIZE // 32) ** 2, classes))
        else:
            self.hidden = scale(4096, width)
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(last * 49, self.hidden), nn.ReLU(True), nn.Dropout(0.0),
                nn.Linear(self.hidden, self.hidden), nn.ReLU(True), nn.Dropout(0.0),
                nn.Linear(self.hidden, classes))

    def forward(self, x):
        x = self.features(x)
        if self.head == "imagenet":
            x = self.avgpool(x)
        return self.classifier(torch.flatten(x, 1))


def randomise(m, tracked=3):
    """Seeded random weights that keep activations of unit scale in depth:
    Kaiming-normal (fan_in) weights, small random biases, BatchNorm gamma
    around 1, beta around 0, random running statistics, `tracked` batches
    tracked."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                nn.init.normal_(mod.bias, 0.0, 0.1)
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.normal_(mod.weight, 1.0, 0.2)
                nn.init.normal_(mod.bias, 0.0, 0.2)
                mod.running_mean.normal_(0.0, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(tracked)


def step(model, x, labels, train):
    """One forward and backward pass; returns logits, loss and gradients."""
    model.train(train)
    x = x.clone().requires_grad_(True)
    model.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {"grad.input": x.grad}
    grads.update({"grad." + n: p.grad for n, p in model.named_parameters()})
    return logits, loss, grads


def save(path, tensors, meta):
    """Writes tensors (F32, F16, BF16, F64 or I64) and string metadata as
    safetensors, keys sorted (there is no safetensors package for Debian's
    Python)."""
    header = {"__metadata__": {k: str(v) for k, v in meta.items()}}
    chunks, offset = [], 0
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[key] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def max_rel(a, b):
    return ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def run_case(seed, name, model_name, width, head, mode):
    torch.manual_seed(seed)
    model = VGG(model_name, width, head, CLASSES)
    randomise(model)
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    labels = torch.randint(0, CLASSES, (BATCH,))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    ref = VGG(model_name, width, head, CLASSES).double()  # float64 twin for the error report
    ref.load_state_dict(model.state_dict())
    ref_logits, ref_loss, ref_grads = step(ref, x.double(), labels, mode == "train")

    logits, loss, grads = step(model, x, labels, mode == "train")
    tensors = dict(before)
    tensors.update(grads)
    tensors.update({"input": x, "labels": labels, "logits": logits, "loss": loss})
    if mode == "train":
        for k, v in model.state_dict().items():
            if "running_" in k or "num_batches_tracked" in k:
                tensors["after." + k] = v
    meta = {"model": model_name, "width": width, "head": head, "classes": CLASSES, "mode": mode, "batch": BATCH}
    if head == "imagenet":
        meta["hidden"] = model.hidden
    path = os.path.join(OUT, name + ".safetensors")
    save(path, tensors, meta)

    zero = [k for k in grads if ref_grads[k].abs().max() < 1e-12]  # conv biases before train-mode BN
    worst = max(max_rel(grads[k], ref_grads[k]) for k in grads if k not in zero)
    noise = max((grads[k].abs().max().item() for k in zero), default=0.0)
    print(f"{name}: {os.path.getsize(path) / 1e6:.2f} MB, loss {loss.item():.4f}, "
          f"float32 vs float64: logits {max_rel(logits, ref_logits):.1e}, "
          f"worst gradient {worst:.1e} (relative to each tensor's max); "
          f"{len(zero)} gradients are 0 in float64, at most {noise:.1e} in float32")


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    for seed, case in enumerate(CASES):
        run_case(seed, *case)


if __name__ == "__main__":
    main()
