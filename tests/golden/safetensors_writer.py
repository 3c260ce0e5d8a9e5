"""The one safetensors writer of the golden scripts (the `safetensors` package is not a
dependency): 8-byte little-endian header length, compact JSON header (optional
"__metadata__" first), padded with spaces so the data buffer starts 8-byte aligned, then the
tensors' little-endian bytes in the order given."""

import json
import struct

import torch

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()  # little-endian on every machine these scripts run on


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, tensor); metadata: optional dict of strings."""
    header = {"__metadata__": metadata} if metadata is not None else {}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        if t.dtype not in DTYPES:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
