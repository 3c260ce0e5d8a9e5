#pragma once
/// Everything of the ops layer users need.
#include "ops/api.h"
#include "ops/dispatch.h"
#include "ops/registry.h"
#include "ops/graph/compiled_step.h"
#include "ops/graph/alias.h"
#include "ops/graph/fusion.h"
