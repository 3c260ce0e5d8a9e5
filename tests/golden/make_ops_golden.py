#!/usr/bin/python3
"""Regenerates tests/golden/ops.safetensors, which tests/nn/test_ops_golden.cpp reads.

Run with Debian's torch (the `python3` on PATH may be another interpreter without it):

    /usr/bin/python3 tests/golden/make_ops_golden.py

Everything is float64 (class targets and max-pool indices int64). Each case C seeds
torch.manual_seed with its own number, draws its inputs, runs one op and stores

    C.<input>            inputs (x, weight, bias, target, ...)
    C.r                  a fixed random projection, shaped like the output
    C.out                the op's result (and C.indices, C.running_mean, ... where noted)
    C.grad.<input>       gradients of loss = sum(out * r) for every differentiable input

Cases:
  conv_s2p1      conv2d x [2, 3, 6, 5], w [4, 3, 3, 3], bias, stride 2, padding 1
  conv_g2d2      conv2d x [2, 4, 6, 6], w [4, 2, 3, 2], bias, groups 2, dilation 2, padding (1, 0)
  conv_cl        conv2d of a channels-last x [2, 3, 5, 4] (stored in logical NCHW order),
                 w [4, 3, 3, 3], bias, padding 1
  convt          conv_transpose2d x [2, 4, 3, 3], w [4, 3, 3, 3], bias [6], stride 2,
                 padding 1, output_padding 1, groups 2
  bn_train       batch_norm in training, x [3, 3, 4, 3], weight, bias, momentum 0.1,
                 eps 1e-5; C.running_mean / C.running_var are the buffers before the call,
                 C.running_mean_after / C.running_var_after after it
  bn_eval        batch_norm in evaluation with the running buffers (not updated)
  ce             cross_entropy logits [8, 5], targets [8] with two equal to -100 (the
                 default ignore_index), label_smoothing 0.1, mean
  ce_spatial     cross_entropy logits [3, 4, 5], targets [3, 5], ignore_index 2 (a valid
                 class, present four times), label_smoothing 0.1, mean
  smooth_l1      smooth_l1_loss x, y = x + 0.6 * noise [4, 6] (|x - y| on both sides of
                 beta), beta 0.5, mean
  bce            binary_cross_entropy_with_logits x [4, 5], y uniform in [0, 1],
                 pos_weight [5], mean (gradients of x and y)
  mse            mse_loss x, y [3, 4], mean
  layer_norm     layer_norm x [3, 4, 5], normalized_shape [4, 5], weight, bias, eps 1e-5
  max_pool       max_pool2d x [2, 2, 7, 6], kernel 3, stride 2, padding 1 (C.indices too)
  avg_pool       avg_pool2d x [2, 2, 7, 6], kernel 3, stride 2, padding 1 (count_include_pad)
  upsample       F.interpolate x [2, 2, 4, 5], size (7, 3), mode 'nearest'
  adaptive       adaptive_avg_pool2d x [2, 2, 7, 5] to (3, 4)

The safetensors file is written by hand (8-byte little-endian header length, JSON header,
raw little-endian data): the `safetensors` package is deliberately not a dependency.
"""

import pathlib

import torch

from safetensors_writer import write_safetensors
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent
F64 = torch.float64



def leaf(t):
    return t.detach().clone().requires_grad_(True)


def finish(prefix, inputs, out, extra=()):
    """inputs: list of (name, tensor); those requiring grad get C.grad.<name>."""
    r = torch.randn(out.shape, dtype=F64)
    (out * r).sum().backward()
    rows = [(f"{prefix}.{name}", t) for name, t in inputs]
    rows += [(f"{prefix}.r", r), (f"{prefix}.out", out)]
    rows += [(f"{prefix}.{name}", t) for name, t in extra]
    rows += [(f"{prefix}.grad.{name}", t.grad) for name, t in inputs if t.requires_grad]
    return rows


def conv_case(prefix, seed, xs, ws, channels_last=False, **kw):
    torch.manual_seed(seed)
    x = leaf(torch.randn(xs, dtype=F64))
    w = leaf(torch.randn(ws, dtype=F64))
    b = leaf(torch.randn(ws[0], dtype=F64))
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_(True)
        assert not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    out = F.conv2d(x, w, b, **kw)
    return finish(prefix, [("x", x), ("weight", w), ("bias", b)], out)


def convt_case():
    torch.manual_seed(4)
    x = leaf(torch.randn(2, 4, 3, 3, dtype=F64))
    w = leaf(torch.randn(4, 3, 3, 3, dtype=F64))
    b = leaf(torch.randn(6, dtype=F64))
    out = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)
    return finish("convt", [("x", x), ("weight", w), ("bias", b)], out)


def bn_case(prefix, seed, training):
    torch.manual_seed(seed)
    x = leaf(torch.randn(3, 3, 4, 3, dtype=F64) * 1.5 + 0.5)
    w = leaf(torch.randn(3, dtype=F64))
    b = leaf(torch.randn(3, dtype=F64))
    rm = torch.randn(3, dtype=F64)
    rv = torch.rand(3, dtype=F64) + 0.5
    rm_after, rv_after = rm.clone(), rv.clone()
    out = F.batch_norm(x, rm_after, rv_after, w, b, training=training, momentum=0.1, eps=1e-5)
    extra = [("running_mean_after", rm_after), ("running_var_after", rv_after)]
    rows = finish(prefix, [("x", x), ("weight", w), ("bias", b)], out, extra)
    return rows + [(f"{prefix}.running_mean", rm), (f"{prefix}.running_var", rv)]


def ce_case():
    torch.manual_seed(5)
    logits = leaf(torch.randn(8, 5, dtype=F64) * 2)
    target = torch.randint(0, 5, (8,), dtype=torch.int64)
    target[2] = -100
    target[5] = -100
    out = F.cross_entropy(logits, target, reduction="mean", label_smoothing=0.1)
    return finish("ce", [("logits", logits), ("target", target)], out)


def ce_spatial_case():
    torch.manual_seed(6)
    logits = leaf(torch.randn(3, 4, 5, dtype=F64) * 2)
    target = torch.tensor([[0, 2, 1, 3, 3], [2, 1, 0, 0, 2], [3, 1, 2, 0, 1]], dtype=torch.int64)
    out = F.cross_entropy(logits, target, reduction="mean", ignore_index=2, label_smoothing=0.1)
    return finish("ce_spatial", [("logits", logits), ("target", target)], out)


def pair_case(prefix, seed, shape, fn, spread=None):
    """y independent of x, or x + spread * noise (so that |x - y| straddles a threshold)."""
    torch.manual_seed(seed)
    x = torch.randn(shape, dtype=F64)
    y = torch.randn(shape, dtype=F64)
    if spread is not None:
        y = x + spread * y
    x, y = leaf(x), leaf(y)
    return finish(prefix, [("x", x), ("y", y)], fn(x, y))


def bce_case():
    torch.manual_seed(9)
    x = leaf(torch.randn(4, 5, dtype=F64) * 2)
    y = leaf(torch.rand(4, 5, dtype=F64))
    pw = torch.rand(5, dtype=F64) * 2 + 0.25
    out = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="mean")
    return finish("bce", [("x", x), ("y", y), ("pos_weight", pw)], out)


def layer_norm_case():
    torch.manual_seed(10)
    x = leaf(torch.randn(3, 4, 5, dtype=F64) * 2 + 1)
    w = leaf(torch.randn(4, 5, dtype=F64))
    b = leaf(torch.randn(4, 5, dtype=F64))
    out = F.layer_norm(x, [4, 5], w, b, eps=1e-5)
    return finish("layer_norm", [("x", x), ("weight", w), ("bias", b)], out)


def unary_case(prefix, seed, shape, fn):
    torch.manual_seed(seed)
    x = leaf(torch.randn(shape, dtype=F64))
    res = fn(x)
    out, extra = (res[0], [("indices", res[1])]) if isinstance(res, tuple) else (res, [])
    return finish(prefix, [("x", x)], out, extra)


def main():
    rows = conv_case("conv_s2p1", 1, (2, 3, 6, 5), (4, 3, 3, 3), stride=2, padding=1)
    rows += conv_case("conv_g2d2", 2, (2, 4, 6, 6), (4, 2, 3, 2), groups=2, dilation=2, padding=(1, 0))
    rows += conv_case("conv_cl", 3, (2, 3, 5, 4), (4, 3, 3, 3), channels_last=True, padding=1)
    rows += convt_case()
    rows += bn_case("bn_train", 11, True)
    rows += bn_case("bn_eval", 12, False)
    rows += ce_case()
    rows += ce_spatial_case()
    rows += pair_case("smooth_l1", 7, (4, 6), lambda x, y: F.smooth_l1_loss(x, y, reduction="mean", beta=0.5),
                      spread=0.6)
    rows += bce_case()
    rows += pair_case("mse", 8, (3, 4), lambda x, y: F.mse_loss(x, y, reduction="mean"))
    rows += layer_norm_case()
    rows += unary_case("max_pool", 13, (2, 2, 7, 6),
                       lambda x: F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True))
    rows += unary_case("avg_pool", 14, (2, 2, 7, 6), lambda x: F.avg_pool2d(x, 3, stride=2, padding=1))
    rows += unary_case("upsample", 15, (2, 2, 4, 5), lambda x: F.interpolate(x, size=(7, 3), mode="nearest"))
    rows += unary_case("adaptive", 16, (2, 2, 7, 5), lambda x: F.adaptive_avg_pool2d(x, (3, 4)))
    write_safetensors(OUT / "ops.safetensors", rows)


if __name__ == "__main__":
    main()
