// The whole public API of Janus in one include: tensors and devices, layers
// (built-in, composite, registered), models (JSON or GraphBuilder), losses,
// optimizers, schedules, checkpoints, datasets and the loader, the trainer.
// Configs are janus::Json (json.hpp); no JSON library is included. The
// nlohmann::json entry points are in <janus/nlohmann_json.hpp>, which a
// program includes itself when it wants them.
#pragma once

#include "janus/activation.hpp"
#include "janus/checkpoint.hpp"
#include "janus/composite_layer.hpp"
#include "janus/data.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/graph_builder.hpp"
#include "janus/init.hpp"
#include "janus/json.hpp"
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
#include "janus/trainer.hpp"
