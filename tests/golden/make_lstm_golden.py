#!/usr/bin/python3
"""Regenerates tests/golden/lstm.safetensors, which tests/nn/test_rnn.cpp reads.

Run with Debian's torch (the `python3` on PATH may be another interpreter without it):

    /usr/bin/python3 tests/golden/make_lstm_golden.py

Two cases, everything float64 (lengths int64), weights from torch.manual_seed + the
module's own init (uniform in +-1/sqrt(hidden_size)):

  packed.*  2-layer bidirectional torch.nn.LSTM(5, 4), batch 3, T 6, lengths [6, 4, 1],
            batch_first=False, given h0 / c0, run as pack_padded_sequence + LSTM +
            pad_packed_sequence(total_length=T)
  bf.*      1-layer bidirectional torch.nn.LSTM(3, 2, batch_first=True), batch 2, T 4,
            no lengths, zero initial state

Each case C holds:
    C.x, C.lengths (packed only), C.h0, C.c0 (packed only), C.r   inputs
    C.<state_dict name>                                       weights (weight_ih_l0, ...)
    C.output, C.h_n, C.c_n                                     forward results
    C.grad.x, C.grad.h0, C.grad.c0, C.grad.<state_dict name>   gradients of
        loss = sum(output * r) + sum(h_n) + 0.5 * sum(c_n)

The safetensors file is written by hand (8-byte little-endian header length, JSON header,
raw little-endian data): the `safetensors` package is deliberately not a dependency.
"""

import pathlib

import torch

from safetensors_writer import write_safetensors
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OUT = pathlib.Path(__file__).resolve().parent



def run_case(prefix, seed, input_size, hidden, layers, batch, steps, lengths, batch_first, with_state):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(input_size, hidden, num_layers=layers, bidirectional=True, batch_first=batch_first).double()
    directions = 2
    x_shape = (batch, steps, input_size) if batch_first else (steps, batch, input_size)
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    state_shape = (layers * directions, batch, hidden)
    h0 = torch.randn(state_shape, dtype=torch.float64, requires_grad=True) if with_state else None
    c0 = torch.randn(state_shape, dtype=torch.float64, requires_grad=True) if with_state else None
    out_shape = (batch, steps, directions * hidden) if batch_first else (steps, batch, directions * hidden)
    r = torch.randn(out_shape, dtype=torch.float64)

    state = (h0, c0) if with_state else None
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=True)
        out_packed, (h_n, c_n) = lstm(packed, state)
        output, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=steps)
    else:
        output, (h_n, c_n) = lstm(x, state)
    loss = (output * r).sum() + h_n.sum() + 0.5 * c_n.sum()
    loss.backward()

    rows = [(f"{prefix}.x", x), (f"{prefix}.r", r)]
    if lengths is not None:
        rows.append((f"{prefix}.lengths", lengths))
    if with_state:
        rows += [(f"{prefix}.h0", h0), (f"{prefix}.c0", c0)]
    params = list(lstm.named_parameters())
    rows += [(f"{prefix}.{name}", p) for name, p in params]
    rows += [(f"{prefix}.output", output), (f"{prefix}.h_n", h_n), (f"{prefix}.c_n", c_n)]
    rows.append((f"{prefix}.grad.x", x.grad))
    if with_state:
        rows += [(f"{prefix}.grad.h0", h0.grad), (f"{prefix}.grad.c0", c0.grad)]
    rows += [(f"{prefix}.grad.{name}", p.grad) for name, p in params]
    return rows


def main():
    rows = run_case("packed", 2024, 5, 4, 2, 3, 6, torch.tensor([6, 4, 1], dtype=torch.int64), False, True)
    rows += run_case("bf", 7, 3, 2, 1, 2, 4, None, True, False)
    write_safetensors(OUT / "lstm.safetensors", rows)


if __name__ == "__main__":
    main()
