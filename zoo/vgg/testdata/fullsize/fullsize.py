"""The full-size check: torchvision's real VGG models at 224x224 against gozoo.

Run from the repository root with Debian's Python (PyTorch 1.13,
torchvision 0.14) and Go on the PATH:

    /usr/bin/python3 zoo/vgg/testdata/fullsize/fullsize.py [MODEL ...]

(default: vgg11 vgg11_bn vgg13 vgg13_bn vgg16 vgg16_bn vgg19 vgg19_bn).
One model at a time, in a temporary folder that is removed afterwards (the
weights are 0.5 GB a model and are never committed; nothing is downloaded):

1. torchvision.models.<MODEL>() (1000 classes) with seeded random weights:
   Kaiming-normal weights, small random biases, random BatchNorm affine
   parameters and running statistics, num_batches_tracked = 7; its
   state_dict is written as safetensors (F32, I64), with a seeded random
   input (2, 3, 224, 224) and the eval-mode logits (2, 1000).
2. `go test ./zoo/vgg -run TestFullSizeTorchvision` with ZOO_FULLSIZE_DIR and
   ZOO_FULLSIZE_MODEL set: gozoo loads the weights (vgg.New with the
   imagenet head, 224x224, LoadWeights), runs the input through its
   evaluation graph, compares the logits (relative max difference
   max|gozoo - torch| / max|torch| at most 1e-4, same top-1) and saves the
   weights with SaveWeights.
3. PyTorch loads gozoo's file into a fresh torchvision.models.<MODEL>() with
   load_state_dict(strict=True) and checks every tensor is bit-identical to
   the original and the logits are identical.

It prints one line per model and a Markdown table at the end; it exits 1
when any check fails.
"""
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gen"))
from vgg import randomise  # noqa: E402  (the fixtures' seeded initialisation)

MODELS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
DTYPES = {torch.float32: "F32", torch.int64: "I64"}
TORCH_DTYPES = {v: k for k, v in DTYPES.items()}


def save(path, tensors):
    """Writes tensors as safetensors, streaming them (no joined copy)."""
    header, offset, keys = {}, 0, sorted(tensors)
    for k in keys:
        t = tensors[k]
        n = t.numel() * t.element_size()
        header[k] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for k in keys:
            f.write(tensors[k].detach().contiguous().numpy().tobytes())


def load(path):
    """Reads a safetensors file by hand (Debian has no safetensors package)."""
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        dt = TORCH_DTYPES[v["dtype"]]
        size = torch.tensor([], dtype=dt).element_size()
        out[k] = torch.frombuffer(buf, dtype=dt, count=(e - s) // size, offset=8 + n + s).reshape(v["shape"])
    return out


def seeded(name):
    torch.manual_seed(MODELS.index(name) + 1)
    m = getattr(torchvision.models, name)()  # random weights, nothing downloaded
    randomise(m, tracked=7)
    return m.eval()


def check(name, tmp):
    t0 = time.time()
    m = seeded(name)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = m(x)
    save(os.path.join(tmp, name + ".torch.safetensors"), m.state_dict())
    save(os.path.join(tmp, name + ".io.safetensors"), {"input": x, "logits": logits})

    env = dict(os.environ, ZOO_FULLSIZE_DIR=tmp, ZOO_FULLSIZE_MODEL=name)
    go = subprocess.run(["go", "test", "./zoo/vgg", "-run", "^TestFullSizeTorchvision$", "-count=1", "-v", "-timeout", "30m"],
                        env=env, capture_output=True, text=True)
    if go.returncode != 0:
        print(go.stdout[-4000:], go.stderr[-4000:], file=sys.stderr)
        return {"model": name, "ok": False, "error": "go test failed"}
    result = json.load(open(os.path.join(tmp, name + ".result.json")))

    back = load(os.path.join(tmp, name + ".gozoo.safetensors"))
    fresh = getattr(torchvision.models, name)().eval()
    fresh.load_state_dict(back, strict=True)
    orig = m.state_dict()
    differ = [k for k, v in fresh.state_dict().items()
              if v.dtype != orig[k].dtype or not torch.equal(v.view(torch.int32) if v.dtype == torch.float32 else v,
                                                             orig[k].view(torch.int32) if v.dtype == torch.float32 else orig[k])]
    with torch.no_grad():
        again = fresh(x)
    result.update(ok=not differ and torch.equal(again, logits) and result["relative"] <= 1e-4 and result["top1_agree"] == "2/2",
                  tensors=len(back), bitwise_differ=len(differ), torch_logits_identical=torch.equal(again, logits),
                  seconds=round(time.time() - t0))
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    return result


def main():
    names = sys.argv[1:] or MODELS
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n}; the models are {' '.join(MODELS)}")
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, torchvision {torchvision.__version__}")
    results = []
    with tempfile.TemporaryDirectory(prefix="gozoo-fullsize-") as tmp:
        for n in names:
            r = check(n, tmp)
            print(json.dumps(r), flush=True)
            results.append(r)
    print("\n| model | max abs logit | max abs diff | relative | top-1 agree | strict load, bit-identical tensors | logits after reload | time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if "relative" not in r:
            print(f"| {r['model']} | failed: {r.get('error')} |")
            continue
        print(f"| {r['model']} | {r['max_abs_logit']} | {r['max_abs_diff']} | {r['relative']} | {r['top1_agree']} | "
              f"{r['tensors']} tensors, {r['bitwise_differ']} differ | {'identical' if r['torch_logits_identical'] else 'DIFFER'} | {r['seconds']} s |")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
