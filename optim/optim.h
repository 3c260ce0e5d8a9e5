#pragma once
/// Everything of the optim layer.
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/lars.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"
#include "optim/schedules.h"
#include "optim/sgd.h"
