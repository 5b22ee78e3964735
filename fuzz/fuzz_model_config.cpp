// Model configs: NeuralNetwork::from_config on the input as JSON, then build,
// forward and backward on a small batch. The input shape is picked by the
// first byte (dense (2, 4), image (2, 8, 8, 3) or (1, 5, 7, 1)); the rest is
// the JSON. Impossible layer combinations (a kernel larger than its padded
// input, pooling that leaves no output, a dense layer on images without
// flatten) must be refused with a janus::Error.
#include <janus/device.hpp>
#include <janus/error.hpp>
#include <janus/model.hpp>
#include <janus/nlohmann_json.hpp>
#include <janus/tensor.hpp>

#include <functional>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const janus::Shape shapes[] = {{2, 4}, {2, 8, 8, 3}, {1, 5, 7, 1}};
  const janus::Shape& in = shapes[data[0] % 3];
  const nlohmann::json j = nlohmann::json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  // Keep each input's memory small (libFuzzer flags any malloc over 1 GiB):
  // integers beyond 64 in magnitude (seeds aside) are skipped here. Absurd
  // sizes are refused by Tensor::empty and covered by tests/test_cli_hostile.sh.
  bool small = true;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_number_integer() && (v.get<int64_t>() > 64 || v.get<int64_t>() < -64)) small = false;
    if (v.is_number_unsigned() && v.get<uint64_t>() > 64) small = false;
    if (v.is_structured())
      for (auto it = v.begin(); it != v.end(); ++it)
        if (!(v.is_object() && it.key() == "seed")) walk(*it);
  };
  walk(j);
  if (!small) return 0;
  try {
    janus::NeuralNetwork model = janus::NeuralNetwork::from_config(j);
    // Keep the work per input small: a config whose parameters would not fit
    // in a few MB is checked for shapes only.
    const auto node_inputs = model.node_input_shapes(in);
    for (size_t i = 0; i < model.size(); ++i) {
      const janus::Shape s = model.layer(i).graph_output_shape(node_inputs[i]);
      if (s.rank() < 1) std::abort();
      double n = 1;
      for (int64_t d : s.dims()) {
        if (d <= 0 || d > (1 << 16)) return 0;
        n *= static_cast<double>(d);
      }
      if (n > (1 << 20)) return 0;
    }
    janus::NeuralNetwork again = janus::NeuralNetwork::from_config(model.config());
    (void)again;
    janus::Device& cpu = janus::cpu_device();
    model.build(in, cpu);
    int64_t params = 0;
    for (auto& p : model.named_parameters()) params += p.parameter->value.numel();
    if (params > (1 << 20)) return 0;
    std::vector<float> x(static_cast<size_t>(in.numel()));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
    janus::Tensor xt = janus::Tensor::from_host(x, in, cpu);
    janus::Tensor y = model.forward(xt, janus::Mode::Train);
    if (y.shape() != model.output_shape(in)) std::abort();
    std::vector<float> t(static_cast<size_t>(y.numel()), 0.0f);
    for (int64_t r = 0; r < y.shape().rows(); ++r) t[static_cast<size_t>(r * y.shape().last())] = 1.0f;
    (void)model.backward(janus::Tensor::from_host(t, y.shape(), cpu), y);
    (void)model.predict(xt, janus::Tensor::from_host(t, y.shape(), cpu));
  } catch (const janus::Error&) {
  }
  return 0;
}
