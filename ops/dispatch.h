#pragma once
/// The dispatcher: the path of every op call (DESIGN §3):
/// decompose? -> infer (checks, promotion) -> kernel of the device -> autograd record.

#include <vector>

#include "ops/op_def.h"

namespace pacer::ops {

/// Runs `op` on `inputs` with `attrs`; returns its outputs.
std::vector<Tensor> call(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs = {});
/// call() for ops with one output.
Tensor call1(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs = {});

/// Counts kernel launches made through the dispatcher (bench and graph statistics).
uint64_t kernel_launch_count();
/// Adds `n` to that count: for kernels run outside the dispatcher (the graph executor).
void note_kernel_launches(uint64_t n);

}  // namespace pacer::ops
