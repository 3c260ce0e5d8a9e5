#pragma once
/// The whole public API of Pacer: #include <pacer/pacer.h> and link Pacer::pacer.
#include "autograd/autograd.h"
#include "core/core.h"
#include "nn/nn.h"
#include "ops/ops.h"
#include "optim/optim.h"
