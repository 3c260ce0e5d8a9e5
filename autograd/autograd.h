#pragma once
/// Everything of the autograd layer.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/saved_tensor.h"
