#!/usr/bin/python3
"""Regenerates tests/golden/resnet50_golden.safetensors, which tests/models/test_resnet.cpp reads.

Run with Debian's torch + torchvision (the `python3` on PATH may be another interpreter):

    /usr/bin/python3 tests/golden/make_resnet_golden.py

The model is torchvision.models.resnet50(num_classes=10) (the parameter names are those of
the 1000-class model; 10 classes keep nothing large in the file). Its 25M weights are not
stored: both sides compute them from a formula. unit(t, n) is a 32-bit integer hash of
(t, i) for i in 0..n-1, mapped to [-1, 1) with 24-bit resolution (exact in f32):

    h = (i * 0x9E3779B1 + (t + 1) * 0x85EBCA77) mod 2^32
    h ^= h >> 15; h = h * 0x2C1B3C6D mod 2^32; h ^= h >> 12; h = h * 0x297A2D39 mod 2^32; h ^= h >> 15
    unit = (h >> 8) / 2^23 - 1

The tensors of state_dict(), in order and skipping num_batches_tracked, are numbered
t = 0, 1, ...; tensor t of n elements (row-major) gets, computed in f64 and rounded to f32:

    conv weight [o, i, kh, kw]   sqrt(6 / fan_in) * u    (fan_in = i*kh*kw: He variance 2/fan_in)
    fc.weight [o, i], fc.bias    u / sqrt(i)             (Linear's default bound)
    BN weight / bias             1 + 0.1 u / 0.1 u
    BN running_mean / var        0.1 u / 1 + 0.5 |u|

The input x [2, 3, 64, 64] is unit(1000000, 24576). The reference runs in float64 (on the
f32-rounded weights), so it has no rounding error of its own to speak of. Note for f32
comparisons: train-mode batch norm through 16 blocks makes the gradients of the early layers
ill-conditioned; torch's own f32 run differs from this f64 one by up to ~4% there
(conv1.weight), by 7e-4 at layer4.2.conv3.weight and 5e-5 at fc.weight.

Stored (float64 unless said otherwise):
    x.head, x.sum                     the first 16 input values and their sum (hash check)
    eval.logits [2, 10]               eval mode (running statistics)
    train.logits [2, 10], train.loss  train mode (batch statistics); loss = cross_entropy
                                      (mean) against labels [1, 7]
    grad.<name> (first 16 elements, flattened) of conv1.weight, bn1.weight,
        layer1.0.conv1.weight, layer1.0.downsample.0.weight, layer3.5.bn2.bias,
        layer4.2.conv3.weight, fc.weight; and grad.fc.bias (all 10)
    running.bn1.running_mean / running.bn1.running_var (all 64), and
        running.layer4.2.bn3.running_var (first 16): after the one train-mode forward
        (momentum 0.1, unbiased variance)
    metadata "keys": every torchvision state_dict key, in order, joined by ","
"""

import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from safetensors_writer import write_safetensors

OUT = pathlib.Path(__file__).resolve().parent
M32 = 0xFFFFFFFF
INPUT_T = 1000000
GRAD_SAMPLES = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                "layer3.5.bn2.bias", "layer4.2.conv3.weight", "fc.weight"]


def unit(t, n):
    """The hash above, in uint64 arithmetic masked to 32 bits (no overflow)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(0x9E3779B1) + np.uint64(((t + 1) * 0x85EBCA77) & M32)) & np.uint64(M32)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(M32)
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & np.uint64(M32)
    h ^= h >> np.uint64(15)
    return (h >> np.uint64(8)).astype(np.float64) / float(1 << 23) - 1.0


def value(name, t, shape, fc_in):
    n = int(np.prod(shape))
    u = unit(t, n)
    if len(shape) == 4:
        v = math.sqrt(6.0 / (shape[1] * shape[2] * shape[3])) * u
    elif name.startswith("fc."):
        v = u / math.sqrt(fc_in)
    elif name.endswith("running_var"):
        v = 1.0 + 0.5 * np.abs(u)
    elif name.endswith("running_mean") or name.endswith("bias"):
        v = 0.1 * u
    elif name.endswith("weight"):
        v = 1.0 + 0.1 * u
    else:
        raise ValueError(f"no formula for {name}")
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def main():
    model = torchvision.models.resnet50(num_classes=10)
    state = model.state_dict()
    fc_in = state["fc.weight"].shape[1]
    t = 0
    new_state = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            new_state[name] = tensor
            continue
        new_state[name] = value(name, t, tuple(tensor.shape), fc_in)
        t += 1
    model.load_state_dict(new_state)
    model = model.double()
    x = torch.from_numpy(unit(INPUT_T, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64))

    model.eval()
    with torch.no_grad():
        eval_logits = model(x)

    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, torch.tensor([1, 7]))
    loss.backward()
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())

    rows = [("x.head", x.flatten()[:16]), ("x.sum", x.sum().reshape(1)),
            ("eval.logits", eval_logits), ("train.logits", logits), ("train.loss", loss.reshape(1))]
    rows += [(f"grad.{n}", params[n].grad.flatten()[:16]) for n in GRAD_SAMPLES]
    rows.append(("grad.fc.bias", params["fc.bias"].grad))
    rows += [("running.bn1.running_mean", buffers["bn1.running_mean"]),
             ("running.bn1.running_var", buffers["bn1.running_var"]),
             ("running.layer4.2.bn3.running_var", buffers["layer4.2.bn3.running_var"].flatten()[:16])]
    write_safetensors(OUT / "resnet50_golden.safetensors", rows, metadata={"keys": ",".join(state.keys())})


if __name__ == "__main__":
    main()
