#pragma once
/// The dispatcher's side of autocast (internal to ops): applying an op's policy to its inputs.

#include <vector>

#include "ops/op_def.h"

namespace pacer::ops {

/// True when autocast is on for some device type in this thread and not suspended (the
/// dispatcher's cheap test before apply_autocast).
bool autocast_active();
/// Casts `inputs` as op.amp says, when autocast is on for the call's device.
void apply_autocast(const OpDef& op, std::vector<Tensor>& inputs, const Attrs& attrs);

}  // namespace pacer::ops
