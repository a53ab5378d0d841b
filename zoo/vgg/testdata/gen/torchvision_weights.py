"""torchvision VGG weights for zoo/vgg's interop test, and the check of the
way back (gozoo-written weights loaded into PyTorch).

Run from the repository root with Debian's Python (PyTorch 1.13,
torchvision 0.14; there is no safetensors package, so files are read and
written by hand with struct, json and torch.frombuffer):

    /usr/bin/python3 zoo/vgg/testdata/gen/torchvision_weights.py
        writes zoo/vgg/testdata/torchvision/ (the .safetensors files and
        manifest.json are replaced)

    /usr/bin/python3 zoo/vgg/testdata/gen/torchvision_weights.py check NAME FILE
        loads FILE (written by gozoo, e.g. by zoo convert --checkpoint)
        into the torchvision model of fixture NAME with
        load_state_dict(strict=True), checks that every tensor is
        bit-identical to the fixture's (widened to float32 for the F16 and
        BF16 fixtures), and that the model gives bit-identical logits

The models are torchvision's own `VGG` class on `make_layers(cfg,
batch_norm)` with every channel count c of `cfgs` scaled to
max(1, floor(c*width + 0.5)), and, because VGG hard-codes the 512*7*7 ->
4096 classifier, a classifier of the same structure (Linear, ReLU, Dropout,
Linear, ReLU, Dropout, Linear) with hidden = max(1, floor(4096*width + 0.5)),
gozoo's imagenet head: the state_dict names are exactly those of
torchvision.models.vgg11_bn(num_classes=10).

Every tensor is seeded random (weights, biases, BatchNorm affine and running
statistics; num_batches_tracked = 7), and a few values test the edges of
the formats: -0.0, a float32 subnormal (1e-40), a float16 subnormal (3e-6).

Each fixture NAME is written three times: NAME.safetensors (F32, as
model.state_dict() holds it), NAME_f16.safetensors (model.half()) and
NAME_bf16.safetensors (model.bfloat16()); num_batches_tracked stays I64.
manifest.json records, for each file, the fixture's options and the SHA-256
of every tensor's bytes after widening to float32 (torch's .float()), the
exact value a loader must produce.
"""
import hashlib
import json
import os
import struct
import sys

import torch
import torch.nn as nn
from torchvision.models.vgg import VGG, cfgs, make_layers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgg import DTYPES, MODELS, randomise, save, scale  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torchvision")
TORCH_DTYPES = {v: k for k, v in DTYPES.items()}

# name: (model, width, classes)
FIXTURES = {
    "vgg11_bn": ("vgg11_bn", 1 / 64, 10),
    "vgg11": ("vgg11", 0.02, 10),
}
COPIES = {"": None, "_f16": torch.float16, "_bf16": torch.bfloat16}


def build(model, width, classes):
    """torchvision's VGG at a reduced width, names as vgg11_bn(num_classes)."""
    base, bn = model.removesuffix("_bn"), model.endswith("_bn")
    cfg = [v if v == "M" else scale(v, width) for v in cfgs[MODELS[base]]]
    m = VGG(make_layers(cfg, batch_norm=bn), num_classes=classes, init_weights=False)
    hidden = scale(4096, width)
    m.classifier = nn.Sequential(
        nn.Linear(cfg[-2] * 49, hidden), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(hidden, classes))
    return m


def seeded(name):
    """The fixture's model with its seeded random weights."""
    model, width, classes = FIXTURES[name]
    torch.manual_seed(sorted(FIXTURES).index(name) + 1)
    m = build(model, width, classes)
    randomise(m, tracked=7)
    with torch.no_grad():
        b = m.features[0].bias
        b[0], b[-1] = -0.0, 1e-40
        m.classifier[0].bias[0] = 3e-6
    return m.eval()


def load(path):
    """Reads a safetensors file: (tensors, metadata)."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        dt = TORCH_DTYPES[v["dtype"]]
        size = torch.tensor([], dtype=dt).element_size()
        out[k] = torch.frombuffer(buf, dtype=dt, count=(e - s) // size, offset=8 + n + s).reshape(v["shape"])
    return out, meta


def widened_sha(t):
    t = t.float() if t.is_floating_point() else t
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def generate():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".safetensors"):
            os.remove(os.path.join(OUT, f))
    manifest = {}
    for name, (model, width, classes) in FIXTURES.items():
        m = seeded(name)
        for suffix, dt in COPIES.items():
            sd = {k: (v.to(dt) if dt is not None and v.is_floating_point() else v) for k, v in m.state_dict().items()}
            file = name + suffix + ".safetensors"
            meta = {"source": "torchvision 0.14 VGG, seeded random weights", "model": model}
            save(os.path.join(OUT, file), sd, meta)
            manifest[file] = {"model": model, "width": width, "classes": classes, "head": "imagenet",
                              "sha256_float32": {k: widened_sha(v) for k, v in sorted(sd.items())}}
            print(f"{file}: {len(sd)} tensors, {os.path.getsize(os.path.join(OUT, file))} bytes")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def check(name, path):
    """Loads a gozoo-written file into the torchvision model, strictly."""
    want, _ = load(os.path.join(OUT, name + ".safetensors"))
    base = name.removesuffix("_f16").removesuffix("_bf16")
    model, width, classes = FIXTURES[base]
    got, meta = load(path)
    m = build(model, width, classes).eval()
    m.load_state_dict(got, strict=True)
    bad = [k for k, v in m.state_dict().items()
           if v.dtype != (torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
           or not torch.equal(v.view(torch.int32) if v.dtype == torch.float32 else v,
                              want[k].float().view(torch.int32) if v.dtype == torch.float32 else want[k])]
    ref = build(model, width, classes).eval()
    ref.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in want.items()}, strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = m(x), ref(x)
    print(f"{path}: gozoo metadata model={meta.get('gozoo.model')}; load_state_dict(strict=True) of "
          f"{len(got)} tensors: ok; tensors differing bitwise from {name}.safetensors (as float32): {len(bad)} {bad[:5]}; "
          f"logits (2, {classes}) identical: {torch.equal(a, b)} (max |diff| {(a - b).abs().max().item():.3g})")
    if bad or not torch.equal(a, b):
        sys.exit(1)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 1:
        generate()
    else:
        sys.exit("usage: torchvision_weights.py [check NAME FILE]")
