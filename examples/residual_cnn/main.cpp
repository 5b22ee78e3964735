// A standalone program against an installed Janus (find_package(Janus)):
// builds the residual CNN of residual_block.hpp in C++, trains it a few SGD
// steps on CIFAR-10, saves a checkpoint, loads it back (load_model reads the
// user-registered residual_block type) and checks that the loaded model
// predicts exactly what the trained one does.
//
//   residual_cnn [--data-dir D] [--steps N] [--out DIR]
//
// Data: CIFAR-10's data_batch_1.bin under --data-dir (else $JANUS_DATA_DIR,
// ./data, ../shared/data). Without it the program says so and trains on
// synthetic images (random pixels, labels from the mean brightness), so
// the build can still be checked on a machine without the data set.
// Exit status: 0 when the loss is finite and the round trip is exact.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include <janus/janus.hpp>

#include "residual_block.hpp"

namespace {

// 512 synthetic 32x32x3 images in [0, 1): label = decile of the mean pixel.
janus::Dataset synthetic_images() {
  janus::Dataset d;
  d.sample_shape = janus::Shape{32, 32, 3};
  d.num_classes = 10;
  d.source = "synthetic images";
  janus::Rng rng(7);
  for (int i = 0; i < 512; ++i) {
    double sum = 0;
    const float level = static_cast<float>(rng.uniform());
    for (int k = 0; k < 32 * 32 * 3; ++k) {
      const float v = 0.5f * level + 0.5f * static_cast<float>(rng.uniform());
      d.x.push_back(v);
      sum += v;
    }
    d.labels.push_back(std::min(9, static_cast<int>(10 * sum / (32 * 32 * 3))));
  }
  return d;
}

janus::Dataset load_data(const std::string& data_dir_flag) {
  try {
    const std::string dir = janus::find_cifar10_dir(janus::resolve_data_dir(data_dir_flag, "--data-dir"));
    return janus::load_cifar10_batches(janus::cifar10_batch_files(dir, {1}));
  } catch (const janus::Error& e) {
    std::cout << "CIFAR-10 not found (" << e.what() << ")\n"
              << "training on SYNTHETIC images instead (the numbers below say nothing about CIFAR-10)\n";
    return synthetic_images();
  }
}

}  // namespace

int main(int argc, char** argv) try {
  std::string data_dir, out_dir = ".";
  int steps = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data-dir" && i + 1 < argc) data_dir = argv[++i];
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
    else {
      std::cerr << "usage: residual_cnn [--data-dir D] [--steps N] [--out DIR]\n";
      return 2;
    }
  }
  if (steps < 1) {
    std::cerr << "residual_cnn: --steps must be a positive integer\n";
    return 2;
  }

  example::register_residual_block();  // before load_model reads the checkpoint
  janus::Device& device = janus::cpu_device();
  janus::NeuralNetwork net = example::residual_cnn(device, /*seed=*/1);
  std::cout << "model config (the JSON twin of the C++ code):\n" << net.config().dump(2) << "\n";

  janus::Dataset data = load_data(data_dir);
  janus::Standardizer standardizer;
  standardizer.fit(data);
  standardizer.apply(data);
  std::cout << "data: " << data.size() << " images from " << data.source << "\n";

  janus::LoaderOptions loader_options;
  loader_options.batch_size = 32;
  loader_options.seed = 1;
  janus::DataLoader loader(data, loader_options);

  // The optimizer is bound to this model's parameters; the schedule is C++.
  janus::SGD sgd(net.named_parameters(), /*momentum=*/0.9, /*weight_decay=*/5e-4, /*nesterov=*/true);
  const auto schedule = janus::cosine_schedule(/*lr=*/0.05, /*total_steps=*/steps, /*warmup_steps=*/steps / 4);

  janus::Batch batch;
  double loss = 0;
  for (int step = 0; step < steps; ++step) {
    if (!loader.next(batch)) {
      loader.start_epoch(loader.epoch() + 1);
      loader.next(batch);
    }
    const janus::Tensor x = janus::Tensor::from_host(batch.x, batch.x_shape, device);
    const janus::Tensor y =
        janus::Tensor::from_host(batch.y_onehot, janus::Shape{batch.size, data.num_classes}, device);
    net.set_step(static_cast<uint64_t>(step));
    const janus::Tensor out = net.forward(x, janus::Mode::Train);
    loss = net.backward(y, out);  // backward(target, output of the last training forward)
    sgd.step(schedule->lr(step));
    std::cout << "step " << step + 1 << "/" << steps << "  lr " << schedule->lr(step) << "  loss " << loss << "\n";
  }
  if (!std::isfinite(loss)) {
    std::cerr << "residual_cnn: the loss is not finite\n";
    return 1;
  }

  const std::string path = out_dir + "/residual_cnn.safetensors";
  janus::save_checkpoint(path, net, &sgd);
  janus::NeuralNetwork loaded = janus::load_model(path, device);
  const janus::Tensor x = janus::Tensor::from_host(batch.x, batch.x_shape, device);
  const std::vector<float> a = net.forward(x, janus::Mode::Eval).to_host_f32();
  const std::vector<float> b = loaded.forward(x, janus::Mode::Eval).to_host_f32();
  if (a != b || loaded.config() != net.config()) {
    std::cerr << "residual_cnn: the model loaded from " << path << " differs from the trained one\n";
    return 1;
  }
  std::cout << "checkpoint " << path << ": reloaded, identical predictions on " << batch.size << " images\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "residual_cnn: " << e.what() << "\n";
  return 1;
}
