"""PyTorch reference for five training steps of a whole VGG (zoo/vgg's
TestPyTorchTrainingSteps): the solvers and the training graph together.

Run from the repository root with Debian's Python (PyTorch 1.13):

    /usr/bin/python3 zoo/vgg/testdata/gen/steps.py

For each solver it builds a VGG at width 1/16 with the cifar head
(torchvision's make_layers, as vgg.py here), seeded random weights, and takes
five steps on five fixed batches of 2 images in train mode: vgg11_bn for SGD,
plain vgg11 for Adam and AdamW. (With batch norm, the bias of the convolution
before it has a gradient that is exactly zero in exact arithmetic and
rounding noise in float32; Adam divides that noise by its own root mean
square and turns it into full-size steps, different in every implementation.
SGD leaves it negligible.) It writes
zoo/vgg/testdata/steps/<case>.safetensors with
  <name>          the state_dict before the first step
  input.<i>       batch i (2, 3, 32, 32), i = 0..4
  labels.<i>      (2) int64
  after.<name>    the state_dict after the fifth step (weights and BN buffers)
  loss.<i>        () the loss of step i
and metadata: the solver and its settings.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vgg import VGG, randomise, save  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "steps")
CASES = [
    ("sgd_nesterov", "vgg11_bn", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
     dict(optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("sgd_momentum", "vgg11_bn", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
     dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=False, weight_decay=5e-4)),
    ("adam", "vgg11", lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=1e-4),
     dict(optimizer="adam", lr=1e-3, weight_decay=1e-4)),
    ("adamw", "vgg11", lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2),
     dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2)),
]
WIDTH, BATCH, STEPS = 0.0625, 2, 5


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, model_name, make, meta) in enumerate(CASES):
        torch.manual_seed(100 + seed)
        model = VGG(model_name, WIDTH, "cifar", 10)
        randomise(model)
        tensors = {k: v.clone() for k, v in model.state_dict().items()}
        opt = make(model.parameters())
        model.train()
        for i in range(STEPS):
            x = torch.randn(BATCH, 3, 32, 32)
            y = torch.randint(0, 10, (BATCH,))
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            tensors[f"input.{i}"], tensors[f"labels.{i}"], tensors[f"loss.{i}"] = x, y, loss.detach()
        for k, v in model.state_dict().items():
            tensors["after." + k] = v.clone()
        meta = dict(meta, model=model_name, width=WIDTH, batch=BATCH, steps=STEPS)
        path = os.path.join(OUT, name + ".safetensors")
        save(path, tensors, meta)
        # The same steps in float64: how far float32 itself drifts, the floor
        # for any float32 implementation (training amplifies rounding).
        ref = VGG(model_name, WIDTH, "cifar", 10).double()
        ref.load_state_dict({k: v for k, v in tensors.items() if "." in k and not k.split(".")[0] in ("input", "labels", "loss", "after")})
        ref_opt = make(ref.parameters())
        ref.train()
        for i in range(STEPS):
            ref_opt.zero_grad()
            F.cross_entropy(ref(tensors[f"input.{i}"].double()), tensors[f"labels.{i}"]).backward()
            ref_opt.step()
        drift = max(((tensors["after." + k].double() - v).abs().max() / v.abs().max().clamp_min(1e-12)).item()
                    for k, v in ref.state_dict().items() if v.is_floating_point())
        print(f"{name}: {os.path.getsize(path) / 1e3:.0f} kB, losses "
              + " ".join(f"{tensors[f'loss.{i}'].item():.4f}" for i in range(STEPS))
              + f"; float32 vs float64 after {STEPS} steps: {drift:.1e}")


if __name__ == "__main__":
    main()
