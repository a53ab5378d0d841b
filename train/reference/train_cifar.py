#!/usr/bin/env python3
"""The gozoo training recipe in PyTorch, for side-by-side comparisons.

Trains the same VGG (torchvision's make_layers configuration, optional batch
norm, a width multiplier, the cifar head Linear(C, classes)) on CIFAR-10 read
from the official binary tarball, with the recipe `zoo train` uses by default:
SGD momentum 0.9, weight decay 5e-4, batch 64, cosine annealing over the
epochs (stepped per epoch), lr 0.1 with batch norm (0.01 without), random
crop with zero padding 4 and horizontal flip, CIFAR-10 mean/std
normalisation, torch.set_num_threads(threads).

Run (Debian's python3-torch):
    /usr/bin/python3 train/reference/train_cifar.py --data ../shared/data/cifar-10-binary.tar.gz \
        --model vgg11_bn --width 0.25 --epochs 3 --threads 2

It prints one line per epoch (train loss and top-1, test loss and top-1,
images per second, seconds) and a final JSON line.
"""
import argparse, io, json, math, tarfile, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CFGS = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def scale(c, w):
    return max(1, int(math.floor(c * w + 0.5)))


class VGG(nn.Module):
    def __init__(self, name, width, classes):
        super().__init__()
        bn = name.endswith("_bn")
        layers, c = [], 3
        for stage in CFGS[name.removesuffix("_bn")]:
            for v in stage:
                v = scale(v, width)
                layers.append(nn.Conv2d(c, v, 3, padding=1))
                if bn:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                c = v
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(c, classes))
        for m in self.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def load(path):
    files = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if m.name.endswith(".bin"):
                files[m.name.rsplit("/", 1)[-1]] = tf.extractfile(m).read()
    def parse(names):
        raw = np.frombuffer(b"".join(files[n] for n in names), dtype=np.uint8).reshape(-1, 3073)
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
    return parse([f"data_batch_{i}.bin" for i in range(1, 6)]), parse(["test_batch.bin"])


def augment(x, gen):
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        img = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = img.flip(-1) if flip[i] else img
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", default="vgg11_bn")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    (xtr, ytr), (xte, yte) = load(a.data)
    xtr = torch.from_numpy(xtr.copy()).float() / 255
    xte = (torch.from_numpy(xte.copy()).float() / 255 - MEAN) / STD
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    model = VGG(a.model, a.width, 10)
    lr = a.lr if a.lr is not None else (0.1 if a.model.endswith("_bn") else 0.01)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs)
    results = []
    for epoch in range(a.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(ytr), generator=gen)
        loss_sum = correct = seen = 0
        for s in range(0, len(perm), a.batch):
            idx = perm[s:s + a.batch]
            if len(idx) < 2:
                continue
            x = (augment(xtr[idx], gen) - MEAN) / STD
            y = ytr[idx]
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
        train_time = time.time() - t0
        sched.step()
        model.eval()
        tl = tc = 0
        with torch.no_grad():
            for s in range(0, len(yte), 500):
                out = model(xte[s:s + 500])
                tl += F.cross_entropy(out, yte[s:s + 500], reduction="sum").item()
                tc += (out.argmax(1) == yte[s:s + 500]).sum().item()
        r = dict(epoch=epoch + 1, train_loss=loss_sum / seen, train_top1=correct / seen, test_loss=tl / len(yte),
                 test_top1=tc / len(yte), images_per_sec=seen / train_time, seconds=time.time() - t0)
        results.append(r)
        print(f"epoch {r['epoch']}/{a.epochs}  train loss {r['train_loss']:.4f} top-1 {100*r['train_top1']:.2f}%  "
              f"test loss {r['test_loss']:.4f} top-1 {100*r['test_top1']:.2f}%  {r['images_per_sec']:.0f} img/s  {r['seconds']:.0f}s", flush=True)
    print(json.dumps(dict(model=a.model, width=a.width, epochs=a.epochs, threads=a.threads, results=results)))


if __name__ == "__main__":
    main()
