// Model checkpoints: parameters, BatchNorm statistics, optimizer state and
// the model config, in one safetensors file.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <exception>

#include "janus/checkpoint.hpp"
#include "janus/error.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"

namespace janus {

namespace {
const char* kOptimizerPrefix = "optimizer.";

// A tensor of the checkpoint `path` converted to `dtype` (the model's),
// refusing values that are not finite or, from float64 to float32 (or
// bfloat16), beyond float32's range (they would become infinity): the message
// names the file, the tensor and the element.
Tensor converted(const Tensor& t, DType dtype, const std::string& path, const std::string& name) {
  const Tensor host = t.to(cpu_device());
  const std::vector<double> values = host.to_host();  // exact from every dtype
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    JANUS_CHECK(std::isfinite(v), "checkpoint '", path, "': tensor '", name, "' element ", i, " is ", v,
                ", not a finite number");
    // (bfloat16 has float32's range: beyond FLT_MAX both would hold infinity)
    JANUS_CHECK(dtype == DType::F64 || std::fabs(v) <= static_cast<double>(FLT_MAX), "checkpoint '", path,
                "': tensor '", name, "' (", dtype_name(host.dtype()), ") element ", i, " is ", v, ", out of ",
                dtype_name(dtype), " range");
  }
  return host.dtype() == dtype ? host : host.to(dtype);
}

// Copies every parameter and buffer the model has from the file, checking
// names and shapes and converting each tensor to the model's dtype.
void restore_model_state(const SafetensorsFile& f, const std::string& path, NeuralNetwork& model) {
  for (auto& [name, t] : model.state()) {
    auto it = f.tensors.find(name);
    JANUS_CHECK(it != f.tensors.end(), "checkpoint '", path, "' has no tensor '", name, "' that the model needs");
    JANUS_CHECK(it->second.shape() == t->shape(), "checkpoint '", path, "': tensor '", name, "' has shape ",
                it->second.shape().str(), " but the model expects ", t->shape().str());
    t->copy_from(converted(it->second, t->dtype(), path, name));
  }
}
}  // namespace

void save_checkpoint(const std::string& path, NeuralNetwork& model, Optimizer* optimizer,
                     const std::map<std::string, std::string>& extra) {
  JANUS_CHECK(model.built(), "save_checkpoint '", path, "': the model has not been built (run a forward pass first)");
  std::vector<NamedTensor> tensors;
  for (auto& [name, t] : model.state()) tensors.push_back({name, *t});
  std::map<std::string, std::string> meta = extra;
  meta["model"] = model.config().dump();
  meta["input_shape"] = nlohmann::json(model.input_shape().dims()).dump();
  if (optimizer) {
    for (auto& [name, t] : optimizer->state()) tensors.push_back({kOptimizerPrefix + name, t});
    meta["optimizer"] = optimizer->config().dump();
    meta["optimizer_steps"] = std::to_string(optimizer->steps());
  }
  write_safetensors(path, tensors, meta);
}

void load_checkpoint_into(const std::string& path, NeuralNetwork& model, Optimizer* optimizer) {
  SafetensorsFile f = read_safetensors(path);
  JANUS_CHECK(model.built(), "load_checkpoint '", path, "': build the model before loading into it");
  restore_model_state(f, path, model);
  if (optimizer) {
    auto steps = f.metadata.find("optimizer_steps");
    JANUS_CHECK(steps != f.metadata.end(), "checkpoint '", path, "' holds no optimizer state");
    optimizer->state().clear();
    // Optimizer slots take the dtype of the parameters they belong to (all of one dtype).
    const auto state = model.state();
    const DType dtype = state.empty() ? DType::F32 : state.front().second->dtype();
    const std::string prefix = kOptimizerPrefix;
    for (auto& [name, t] : f.tensors)
      if (name.rfind(prefix, 0) == 0)
        optimizer->state()[name.substr(prefix.size())] =
            converted(t, dtype, path, name).to(model.device());
    int64_t n = -1;
    try {
      size_t used = 0;
      n = std::stoll(steps->second, &used);
      if (used != steps->second.size()) n = -1;
    } catch (const std::exception&) {
      n = -1;
    }
    JANUS_CHECK(n >= 0, "checkpoint '", path, "': metadata 'optimizer_steps' is not a step count: '", steps->second,
                "'");
    optimizer->set_steps(n);
  }
}

NeuralNetwork load_model(const std::string& path, Device& device) {
  SafetensorsFile f = read_safetensors(path);
  auto m = f.metadata.find("model");
  auto s = f.metadata.find("input_shape");
  JANUS_CHECK(m != f.metadata.end() && s != f.metadata.end(), "checkpoint '", path,
              "' lacks the model config (metadata 'model' and 'input_shape'): not a Janus model checkpoint");
  nlohmann::json config, shape;
  try {
    config = nlohmann::json::parse(m->second);
    shape = nlohmann::json::parse(s->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat("checkpoint '", path, "': bad model metadata (", e.what(), ")"));
  }
  // The input shape: (batch, sample dims...), every extent positive and the
  // whole small enough to describe a real batch.
  std::vector<int64_t> dims;
  bool shape_ok = shape.is_array() && shape.size() >= 2 && shape.size() <= 8;
  int64_t numel = 1;
  for (size_t i = 0; shape_ok && i < shape.size(); ++i) {
    shape_ok = shape[i].is_number_integer() && shape[i].get<int64_t>() > 0 &&
               shape[i].get<int64_t>() <= (int64_t(1) << 31) / numel;
    if (shape_ok) {
      dims.push_back(shape[i].get<int64_t>());
      numel *= dims.back();
    }
  }
  JANUS_CHECK(shape_ok, "checkpoint '", path, "': metadata 'input_shape' is not a valid batch shape: ", s->second);
  // The config's errors (an unregistered layer type, say) name the file too.
  NeuralNetwork model = [&] {
    try {
      return NeuralNetwork::from_config(config);
    } catch (const Error& e) {
      throw Error(detail::concat("checkpoint '", path, "': its model config: ", e.what()));
    }
  }();
  // Built in float32, the dtype the data is fed in (evaluate, predict);
  // each tensor is converted on loading, whatever dtype the file stores.
  model.build(Shape(dims), device, DType::F32);
  restore_model_state(f, path, model);
  return model;
}

}  // namespace janus
