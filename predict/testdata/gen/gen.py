"""Writes the fixtures of predict's tests (run with Debian's /usr/bin/python3:
PIL 9.4, torchvision 0.14, NumPy 1.24):

- resize_<name>.png: an input image; resize_<name>_want.png: what torchvision's
  Resize(32) + CenterCrop(32) (PIL bilinear, antialiased) make of it.
- npy_<name>.npy: arrays written by numpy.save, byte-compared with WriteNPY.
"""
import os

import numpy as np
from PIL import Image
from torchvision import transforms

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
rng = np.random.default_rng(7)


def photo(w, h, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 3.0 + y / 5.0)], axis=-1)
    img += rng.normal(0, 20, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if mode == "RGBA":  # straight alpha; PIL's convert("RGB") drops it
        a = rng.integers(1, 256, (h, w, 1), dtype=np.uint8)
        img = np.concatenate([img, a], axis=-1)
    return Image.fromarray(img, mode)


tf = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32)])
for name, (w, h, mode) in {
    "down": (57, 41, "RGB"),
    "tall": (40, 131, "RGB"),
    "up": (20, 25, "RGB"),
    "alpha": (64, 48, "RGBA"),
}.items():
    img = photo(w, h, mode)
    img.save(os.path.join(here, f"resize_{name}.png"))
    tf(img.convert("RGB")).save(os.path.join(here, f"resize_{name}_want.png"))

for name, shape in {"vec": (3,), "mat": (2, 3), "nchw": (2, 1, 2, 2)}.items():
    a = (np.arange(np.prod(shape), dtype="<f4") * 0.5 - 1).reshape(shape)
    np.save(os.path.join(here, f"npy_{name}.npy"), a)
