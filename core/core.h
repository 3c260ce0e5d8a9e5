#pragma once
/// Everything of the core layer.
#include "core/autograd_meta.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
