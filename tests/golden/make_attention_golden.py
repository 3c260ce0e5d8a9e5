#!/usr/bin/python3
"""Regenerates tests/golden/attention.safetensors, read by tests/nn/test_attention.cpp.

Run with Debian's torch (the `python3` on PATH may be another interpreter without it):

    /usr/bin/python3 tests/golden/make_attention_golden.py

Debian's torch is 1.13, which has no F.scaled_dot_product_attention, so its reference is
written out below in float64 with torch 2.x's semantics (bool mask: true = keep; float
mask: added; is_causal: key j > query i masked; scale defaults to 1/sqrt(d)). The module
cases use torch.nn.MultiheadAttention itself, in float64. Each case applies a fixed loss
sum(out * c) (+ sum(weights * cw) for the module) and stores the gradients of its inputs
and parameters. The safetensors file is written by hand (8-byte little-endian header
length, JSON header, raw little-endian data): the `safetensors` package is deliberately
not a dependency.

Layout, for each SDPA case C:
    sdpa.C.q / .k / .v       inputs [..., L, d], [..., S, d], [..., S, dv]
    sdpa.C.mask              attn_mask (bool or f64), when the case has one
    sdpa.C.c                 the loss weights (shape of out)
    sdpa.C.out               the result
    sdpa.C.grad.q / .k / .v  gradients of sum(out * c)
Settings (is_causal, scale) are repeated in the C++ test.
For each module case M:
    mha.M.param.<name>       state_dict of torch.nn.MultiheadAttention (torch's names)
    mha.M.query / key / value, mha.M.key_padding_mask, mha.M.attn_mask (when used)
    mha.M.c, mha.M.cw        loss weights of the output and of the attention weights
    mha.M.out, mha.M.weights the module's outputs
    mha.M.grad.query / key / value, mha.M.grad.param.<name>   gradients of the loss
"""

import math
import pathlib

import torch

from safetensors_writer import write_safetensors

OUT = pathlib.Path(__file__).resolve().parent / "attention.safetensors"



def sdpa_reference(q, k, v, mask=None, is_causal=False, scale=None):
    """torch 2.x F.scaled_dot_product_attention (math path, no dropout), in float64."""
    L, S = q.size(-2), k.size(-2)
    s = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * s
    if is_causal:
        keep = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v


def leaf(shape):
    return torch.randn(*shape, dtype=torch.float64).requires_grad_(True)


def sdpa_cases(out):
    # (name, q, k, v shapes, mask, is_causal, scale)
    g = torch.Generator().manual_seed(0)
    bool_mask = torch.rand(4, 6, generator=g) > 0.3
    bool_mask[:, 0] = True  # no row fully masked
    cases = [
        ("plain", (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), None, False, None),
        ("bool_mask", (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), bool_mask, False, None),
        ("float_mask", (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), torch.randn(2, 1, 4, 6, dtype=torch.float64), False, None),
        ("causal", (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), None, True, None),
        ("scale_broadcast", (2, 3, 4, 5), (2, 1, 6, 5), (6, 7), None, False, 0.3),
    ]
    for name, qs, ks, vs, mask, causal, scale in cases:
        q, k, v = leaf(qs), leaf(ks), leaf(vs)
        o = sdpa_reference(q, k, v, mask, causal, scale)
        c = torch.randn(*o.shape, dtype=torch.float64)
        (o * c).sum().backward()
        p = f"sdpa.{name}."
        out += [(p + "q", q), (p + "k", k), (p + "v", v), (p + "c", c), (p + "out", o)]
        out += [(p + "grad.q", q.grad), (p + "grad.k", k.grad), (p + "grad.v", v.grad)]
        if mask is not None:
            out.append((p + "mask", mask))


def mha_case(out, name, E, H, L, S, N, batch_first, self_attention, kpm, attn_mask, average):
    mha = torch.nn.MultiheadAttention(E, H, batch_first=batch_first).double()
    with torch.no_grad():  # non-zero biases, so that they are exercised
        mha.in_proj_bias.copy_(torch.randn(3 * E, dtype=torch.float64) * 0.5)
        mha.out_proj.bias.copy_(torch.randn(E, dtype=torch.float64) * 0.5)
    shape = lambda n: (N, n, E) if batch_first else (n, N, E)
    query = leaf(shape(L))
    key = query if self_attention else leaf(shape(S))
    value = query if self_attention else leaf(shape(S))
    o, w = mha(query, key, value, key_padding_mask=kpm, need_weights=True, attn_mask=attn_mask,
               average_attn_weights=average)
    c = torch.randn(*o.shape, dtype=torch.float64)
    cw = torch.randn(*w.shape, dtype=torch.float64)
    ((o * c).sum() + (w * cw).sum()).backward()
    p = f"mha.{name}."
    for k, t in mha.state_dict().items():
        out.append((p + "param." + k, t))
    for k, t in mha.named_parameters():
        out.append((p + "grad.param." + k, t.grad))
    out += [(p + "query", query), (p + "c", c), (p + "cw", cw), (p + "out", o), (p + "weights", w),
            (p + "grad.query", query.grad)]
    if not self_attention:
        out += [(p + "key", key), (p + "value", value), (p + "grad.key", key.grad), (p + "grad.value", value.grad)]
    if kpm is not None:
        out.append((p + "key_padding_mask", kpm))
    if attn_mask is not None:
        out.append((p + "attn_mask", attn_mask))


def main():
    torch.manual_seed(1234)
    out = []
    sdpa_cases(out)
    # Cross-attention, [L, N, E], a key padding mask (true = ignore) that leaves every
    # query at least one key, weights averaged over heads.
    kpm = torch.tensor([[False, False, False, False, False],
                        [False, False, False, True, True],
                        [True, False, True, False, True]])
    mha_case(out, "padding", E=8, H=2, L=4, S=5, N=3, batch_first=False, self_attention=False, kpm=kpm,
             attn_mask=None, average=True)
    # Causal self-attention, batch_first, bool attn_mask (true = not allowed), per-head weights.
    causal = torch.ones(4, 4, dtype=torch.bool).triu(diagonal=1)
    mha_case(out, "causal", E=6, H=3, L=4, S=4, N=2, batch_first=True, self_attention=True, kpm=None,
             attn_mask=causal, average=False)
    out.sort(key=lambda nt: nt[1].dtype == torch.bool)  # bool data last (alignment)
    write_safetensors(OUT, out)
    print(f"wrote {len(out)} tensors to {OUT}")


if __name__ == "__main__":
    main()
