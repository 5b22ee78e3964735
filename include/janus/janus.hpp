// The whole public API of Janus in one include.
#pragma once

#include "janus/activation.hpp"
#include "janus/checkpoint.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/init.hpp"
#include "janus/layer.hpp"
#include "janus/layers.hpp"
#include "janus/loss.hpp"
#include "janus/model.hpp"
#include "janus/optimizer.hpp"
#include "janus/parameter_options.hpp"
#include "janus/precision.hpp"
#include "janus/random.hpp"
#include "janus/scheduler.hpp"
#include "janus/shape.hpp"
#include "janus/tensor.hpp"
