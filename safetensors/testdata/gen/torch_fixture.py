"""Writes safetensors/testdata/torch.safetensors and torch_values.json.

Run from the repository root with Debian's Python, which has PyTorch:

    /usr/bin/python3 safetensors/testdata/gen/torch_fixture.py

Debian has no `safetensors` package, so the file is written by hand the way
`safetensors.torch.save_file` writes it: json.dumps of the header in
insertion order with a "format": "pt" metadata, padded with spaces to a
multiple of 8, and tensors laid out in insertion order (not name order).
torch_values.json holds each tensor's dtype, shape and values as exact
decimal float64 (or integers) for the Go test to compare against.
"""
import json
import os
import struct

import torch

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}

specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, 1e-5, 3.14159265])
tensors = {
    "conv.weight": torch.randn(4, 3, 3, 3),
    "conv.bias": torch.randn(4),
    "bn.num_batches_tracked": torch.tensor(3, dtype=torch.int64),
    "double": torch.randn(2, 3, dtype=torch.float64),
    "half": torch.cat([specials, torch.randn(8)]).to(torch.float16),
    "bfloat": torch.cat([specials, torch.randn(8)]).to(torch.bfloat16),
    "int32": torch.tensor([-7, 0, 2**31 - 1, -(2**31)], dtype=torch.int32),
    "int16": torch.tensor([-300, 300], dtype=torch.int16),
    "int8": torch.tensor([-128, 127, 0], dtype=torch.int8),
    "uint8": torch.tensor([0, 255, 7], dtype=torch.uint8),
    "mask": torch.tensor([True, False, True]),
    "empty": torch.zeros(0, 5),
    "A.scalar": torch.tensor(-1.5),
}

header = {"__metadata__": {"format": "pt", "source": "torch " + torch.__version__}}
chunks, offset, values = [], 0, {}
for name, t in tensors.items():
    t = t.contiguous()
    raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
    header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
    flat = t.flatten()
    if t.dtype.is_floating_point:
        vals = [float(x) for x in flat.double().tolist()]
    else:
        vals = [int(x) for x in flat.long().tolist()]
    values[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "values": vals}

h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(OUT, "torch.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
with open(os.path.join(OUT, "torch_values.json"), "w") as f:
    json.dump({"metadata": header["__metadata__"], "tensors": values}, f, indent=1, sort_keys=True)
    f.write("\n")
