"""PyTorch side of `zoo bench --vs-torch`: time the same VGG models as gozoo.

The model is torchvision's VGG feature stack (3x3 convolutions, padding 1,
optional BatchNorm2d, ReLU, 2x2 max pools) with every channel count scaled
as gozoo scales it (max(1, floor(c*width + 0.5))), then Flatten and
Linear(C*h*w, 10) at 32x32 input: gozoo's "cifar" head. A training step is
forward, cross-entropy, backward and SGD(lr 0.01, momentum 0.9, weight decay
5e-4) in train() mode; inference is eval() under no_grad().

One run measures one model and mode and prints one JSON object on stdout,
in the form of gozoo's bench.Result: impl, model, mode, batch, width,
warmup, iters, seed, threads, kernels, times_s (seconds per timed
iteration) and peak_rss_bytes (resource.getrusage ru_maxrss). It exits 3
when torch cannot be imported.

    /usr/bin/python3 bench/torch_bench.py --model vgg16_bn --mode train \
        --batch 64 --threads 2 --iters 10 --warmup 2

zoo bench embeds this file and feeds it to Python on stdin ("python3 -").
"""

import argparse
import json
import math
import re
import resource
import sys
import time

CONFIGS = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
SIZE, CLASSES = 32, 10


def scale(c, width):
    return max(1, int(math.floor(c * width + 0.5)))


def build(torch, name, width):
    base = name[:-3] if name.endswith("_bn") else name
    if base not in CONFIGS:
        raise SystemExit("torch_bench: unknown model %r; valid: %s" % (name, ", ".join(
            sorted(list(CONFIGS) + [k + "_bn" for k in CONFIGS]))))
    bn = name.endswith("_bn")
    nn = torch.nn
    layers, c, size = [], 3, SIZE
    for stage in CONFIGS[base]:
        for out in stage:
            out = scale(out, width)
            layers.append(nn.Conv2d(c, out, kernel_size=3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        size //= 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * size * size, CLASSES))


def kernels(torch):
    cfg = torch.__config__.show()
    m = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", cfg)
    onednn = ("oneDNN " + m.group(1)) if m and torch.backends.mkldnn.is_available() else "no oneDNN"
    m = re.search(r"CPU capability usage: (\S+)", cfg)
    return "torch %s, %s, %s" % (torch.__version__, onednn, m.group(1) if m else "unknown ISA")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--mode", choices=["train", "infer"], required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.batch < 1 or a.iters < 1 or a.warmup < 0 or not a.width > 0:
        raise SystemExit("torch_bench: need batch >= 1, iters >= 1, warmup >= 0, width > 0")
    try:
        import torch
    except ImportError as e:
        print("torch_bench: cannot import torch with %s: %s" % (sys.executable, e), file=sys.stderr)
        sys.exit(3)

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = build(torch, a.model, a.width)
    x = torch.randn(a.batch, 3, SIZE, SIZE)
    y = torch.randint(0, CLASSES, (a.batch,))
    if a.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)

    json.dump({
        "impl": "pytorch", "model": a.model, "mode": a.mode, "batch": a.batch, "width": a.width,
        "warmup": a.warmup, "iters": a.iters, "seed": a.seed, "threads": torch.get_num_threads(),
        "kernels": kernels(torch), "times_s": times,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
