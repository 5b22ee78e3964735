// janus_bench: throughput of Janus on the CPU (or any device).
//
// For each workload (a JSON file: {"name", "input": [per-example shape],
// "classes", "batch", "model": <NeuralNetwork::from_config JSON>}) it measures
//   - training images/s: forward + loss + backward + SGD (momentum 0.9) step,
//   - inference images/s: evaluation-mode forward,
//   - per layer: forward and backward milliseconds, and GFLOP/s for the
//     convolution and dense layers,
// and prints a table, optionally writing everything as JSON (--json FILE).
// Without --config it runs bench/configs/spec_cnn.json and mlp.json.
//
//   janus_bench [--config FILE]... [--json FILE] [--device cpu|cpu:reference]
//               [--batch N] [--iters N] [--repeats N] [--warmup N] [--no-layers]
//
// Each measurement is the best of --repeats runs of --iters steps (the machine
// may be shared; the best run is the least disturbed one); the median is
// reported too.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/loss.hpp"
#include "janus/model.hpp"
#include "janus/optimizer.hpp"

#ifndef JANUS_BENCH_CONFIG_DIR
#define JANUS_BENCH_CONFIG_DIR "bench/configs"
#endif

namespace {

using janus::Shape;
using janus::Tensor;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  std::vector<std::string> configs;
  std::string json_out;
  std::string device = "cpu";
  int batch = 0;  // 0: the workload's own
  int iters = 10;
  int repeats = 5;
  int warmup = 3;
  bool layers = true;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "janus_bench: %s\nusage: janus_bench [--config FILE]... [--json FILE] [--device D]"
               " [--batch N] [--iters N] [--repeats N] [--warmup N] [--no-layers]\n",
               msg);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    auto positive = [&]() {
      const int v = std::atoi(value().c_str());
      if (v <= 0) usage((a + " needs a positive integer").c_str());
      return v;
    };
    if (a == "--config") o.configs.push_back(value());
    else if (a == "--json") o.json_out = value();
    else if (a == "--device") o.device = value();
    else if (a == "--batch") o.batch = positive();
    else if (a == "--iters") o.iters = positive();
    else if (a == "--repeats") o.repeats = positive();
    else if (a == "--warmup") o.warmup = std::atoi(value().c_str());
    else if (a == "--no-layers") o.layers = false;
    else if (a == "-h" || a == "--help") usage("help");
    else usage(("unknown argument " + a).c_str());
  }
  if (o.configs.empty())
    o.configs = {std::string(JANUS_BENCH_CONFIG_DIR) + "/spec_cnn.json",
                 std::string(JANUS_BENCH_CONFIG_DIR) + "/mlp.json"};
  return o;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw janus::Error("cannot open " + path);
  return json::parse(in);
}

struct Stats {
  double best, median;  // seconds per iteration
};

// Runs fn `warmup` times, then `repeats` timings of `iters` calls each.
template <class Fn>
Stats time_it(const Options& o, janus::Device& dev, Fn&& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  dev.synchronize();
  std::vector<double> per_iter;
  for (int r = 0; r < o.repeats; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < o.iters; ++i) fn();
    dev.synchronize();
    per_iter.push_back(seconds_since(t0) / o.iters);
  }
  std::sort(per_iter.begin(), per_iter.end());
  return {per_iter.front(), per_iter[per_iter.size() / 2]};
}

// Multiply-adds x2 of the forward pass of one layer (0 for layers without
// a GEMM-like core); backward is twice that (data + weight gradients).
double forward_flops(janus::Layer& layer, const Shape& in, const Shape& out) {
  const std::string type = layer.type();
  if (type == "conv2d") {
    const json k = layer.config().at("kernel");
    const double kh = k[0].get<double>(), kw = k[1].get<double>();
    return 2.0 * static_cast<double>(out.numel()) * kh * kw * static_cast<double>(in[in.rank() - 1]);
  }
  if (type == "fully_connected" || type == "dense" || type == "linear") {
    const double n_in = static_cast<double>(in.numel() / in[0]);
    return 2.0 * static_cast<double>(out.numel()) * n_in;
  }
  return 0.0;
}

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

json run_workload(const Options& o, const json& w, janus::Device& dev) {
  const std::string name = w.value("name", std::string("model"));
  const int batch = o.batch > 0 ? o.batch : w.value("batch", 128);
  const int classes = w.value("classes", 10);
  std::vector<int64_t> dims = {batch};
  for (const auto& d : w.at("input")) dims.push_back(d.get<int64_t>());
  const Shape in_shape(dims);

  janus::NeuralNetwork net = janus::NeuralNetwork::from_config(w.at("model"));
  // Random inputs in [-1, 1] and random one-hot labels (fixed seed).
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xs(static_cast<size_t>(in_shape.numel()));
  for (auto& v : xs) v = u(rng);
  std::vector<float> ys(static_cast<size_t>(batch) * classes, 0.0f);
  for (int i = 0; i < batch; ++i) ys[static_cast<size_t>(i) * classes + rng() % classes] = 1.0f;
  const Tensor x = Tensor::from_host(xs, in_shape, dev);
  const Tensor y = Tensor::from_host(ys, Shape{batch, classes}, dev);

  janus::SGD sgd(0.9);
  const double lr = 0.01;
  auto train_step = [&] {
    const Tensor out = net.forward(x, true);
    net.backward(y, out);
    sgd.step(net.named_parameters(), lr);
  };
  auto infer_step = [&] { (void)net.forward(x, false); };

  const Stats train = time_it(o, dev, train_step);
  const long faults0 = minor_faults();
  for (int i = 0; i < 3; ++i) train_step();
  const double faults_per_step = static_cast<double>(minor_faults() - faults0) / 3.0;
  const Stats infer = time_it(o, dev, infer_step);

  json result = {{"name", name},
                 {"batch", batch},
                 {"input", w.at("input")},
                 {"train_ms_per_batch", train.best * 1e3},
                 {"train_ms_per_batch_median", train.median * 1e3},
                 {"train_images_per_s", batch / train.best},
                 {"train_images_per_s_median", batch / train.median},
                 {"infer_ms_per_batch", infer.best * 1e3},
                 {"infer_ms_per_batch_median", infer.median * 1e3},
                 {"infer_images_per_s", batch / infer.best},
                 {"infer_images_per_s_median", batch / infer.median},
                 {"minor_page_faults_per_train_step", faults_per_step}};

  if (o.layers) {
    // Per-layer timings: the same forward / backward as NeuralNetwork, one
    // layer at a time, each averaged over iters * repeats steps.
    const size_t L = net.size();
    std::vector<double> fwd(L, 0.0), bwd(L, 0.0);
    std::vector<Shape> ins(L), outs(L);
    double loss_time = 0.0;
    const int steps = o.iters * o.repeats;
    for (int s = -o.warmup; s < steps; ++s) {
      Tensor h = x;
      for (size_t l = 0; l < L; ++l) {
        ins[l] = h.shape();
        const auto t0 = Clock::now();
        h = net.layer(l).forward(h, true);
        dev.synchronize();
        if (s >= 0) fwd[l] += seconds_since(t0);
        outs[l] = h.shape();
      }
      auto t0 = Clock::now();
      Tensor grad;
      size_t l = L - 1;
      if (net.uses_fused_softmax_cross_entropy()) {
        const auto& ce = static_cast<const janus::CrossEntropy&>(net.loss());
        ce.forward_backward_from_logits(net.layer(l).activation()->z(), y, &grad);
        dev.synchronize();
        if (s >= 0) loss_time += seconds_since(t0);
        t0 = Clock::now();
        grad = net.layer(l).backward_from_preactivation(grad);
      } else {
        net.loss().forward(h, y);
        grad = net.loss().backward(h, y);
        dev.synchronize();
        if (s >= 0) loss_time += seconds_since(t0);
        t0 = Clock::now();
        grad = net.layer(l).backward(grad);
      }
      dev.synchronize();
      if (s >= 0) bwd[l] += seconds_since(t0);
      while (l-- > 0) {
        t0 = Clock::now();
        grad = net.layer(l).backward(grad);
        dev.synchronize();
        if (s >= 0) bwd[l] += seconds_since(t0);
      }
      sgd.step(net.named_parameters(), lr);  // timed on its own below
    }
    const Stats update = time_it(o, dev, [&] { sgd.step(net.named_parameters(), lr); });
    json layers = json::array();
    for (size_t l = 0; l < L; ++l) {
      const double f_ms = fwd[l] / steps * 1e3, b_ms = bwd[l] / steps * 1e3;
      const double flops = forward_flops(net.layer(l), ins[l], outs[l]);
      json e = {{"name", net.layer(l).name()},
                {"type", net.layer(l).type()},
                {"input", ins[l].str()},
                {"output", outs[l].str()},
                {"forward_ms", f_ms},
                {"backward_ms", b_ms}};
      if (flops > 0) {
        e["forward_gflops"] = flops / (f_ms * 1e-3) / 1e9;
        e["backward_gflops"] = 2 * flops / (b_ms * 1e-3) / 1e9;
      }
      layers.push_back(e);
    }
    result["layers"] = layers;
    result["loss_ms"] = loss_time / steps * 1e3;
    result["sgd_update_ms"] = update.best * 1e3;
  }
  return result;
}

void print(const json& r) {
  std::printf("\n== %s  (batch %d)\n", r.at("name").get<std::string>().c_str(), r.at("batch").get<int>());
  std::printf("  training : %9.1f images/s  (%.2f ms/batch; median %.1f images/s)\n",
              r.at("train_images_per_s").get<double>(), r.at("train_ms_per_batch").get<double>(),
              r.at("train_images_per_s_median").get<double>());
  std::printf("  inference: %9.1f images/s  (%.2f ms/batch; median %.1f images/s)\n",
              r.at("infer_images_per_s").get<double>(), r.at("infer_ms_per_batch").get<double>(),
              r.at("infer_images_per_s_median").get<double>());
  std::printf("  minor page faults per training step: %.1f\n",
              r.at("minor_page_faults_per_train_step").get<double>());
  if (!r.contains("layers")) return;
  std::printf("  %-14s %-12s %-20s %-20s %9s %9s %9s %9s\n", "layer", "type", "input", "output",
              "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s");
  for (const auto& e : r.at("layers")) {
    std::printf("  %-14s %-12s %-20s %-20s %9.3f %9.3f", e.at("name").get<std::string>().c_str(),
                e.at("type").get<std::string>().c_str(), e.at("input").get<std::string>().c_str(),
                e.at("output").get<std::string>().c_str(), e.at("forward_ms").get<double>(),
                e.at("backward_ms").get<double>());
    if (e.contains("forward_gflops"))
      std::printf(" %9.1f %9.1f\n", e.at("forward_gflops").get<double>(),
                  e.at("backward_gflops").get<double>());
    else
      std::printf(" %9s %9s\n", "-", "-");
  }
  std::printf("  %-14s %-12s %-20s %-20s %9.3f\n", "loss", "", "", "", r.at("loss_ms").get<double>());
  std::printf("  %-14s %-12s %-20s %-20s %9.3f\n", "sgd update", "", "", "",
              r.at("sgd_update_ms").get<double>());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    janus::Device& dev = janus::get_device(o.device);
    json report = {{"device", dev.name()},
                   {"omp_num_threads", std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : ""},
                   {"janus_num_threads", std::getenv("JANUS_NUM_THREADS") ? std::getenv("JANUS_NUM_THREADS") : ""},
                   {"iters", o.iters},
                   {"repeats", o.repeats},
                   {"workloads", json::array()}};
    std::printf("janus_bench on %s (best of %d x %d steps)\n", dev.name().c_str(), o.repeats, o.iters);
    for (const std::string& path : o.configs) {
      json w = read_json(path);
      if (!w.contains("model")) usage((path + ": a workload needs 'model', 'input' (and optionally name, batch, classes)").c_str());
      json r = run_workload(o, w, dev);
      print(r);
      report["workloads"].push_back(r);
    }
    report["peak_rss_mb"] = static_cast<double>(peak_rss_kb()) / 1024.0;
    std::printf("\npeak RSS: %.1f MiB\n", report["peak_rss_mb"].get<double>());
    if (!o.json_out.empty()) {
      std::ofstream out(o.json_out);
      out << report.dump(2) << "\n";
      if (!out) throw janus::Error("cannot write " + o.json_out);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "janus_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
