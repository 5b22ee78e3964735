// The benchmark engine of `janus bench` and janus_bench (see janus/bench.hpp).
#include "janus/bench.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/env_settings.hpp"
#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/loss.hpp"
#include "janus/model.hpp"
#include "janus/optimizer.hpp"
#include "nn/config_plugins.hpp"

#ifndef JANUS_SOURCE_DIR
#define JANUS_SOURCE_DIR "."
#endif

namespace janus::bench {

namespace internal {
int janus_threads();
int available_cpus();
}  // namespace internal

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool file_exists(const std::string& path) { return static_cast<bool>(std::ifstream(path)); }

json read_json(const std::string& path) {
  std::ifstream in(path);
  JANUS_CHECK(static_cast<bool>(in), "cannot open ", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": " + e.what());
  }
}

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  const auto dot = s.rfind('.');
  return dot == std::string::npos ? s : s.substr(0, dot);
}

struct Stats {
  double best, median;  // seconds per iteration
};

// Runs fn `warmup` times, then `repeats` timings of `iters` calls each.
template <class Fn>
Stats time_it(const Options& o, Device& dev, Fn&& fn) {
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

// Multiply-adds x2 of the forward pass of one layer (0 for layers without a
// GEMM-like core); backward is twice that (data + weight gradients).
double forward_flops(Layer& layer, const Shape& in, const Shape& out) {
  const std::string type = layer.type();
  if (type == "conv2d") {
    const json k = layer.config().at("kernel");
    double kh = 0, kw = 0;
    if (k.is_array()) {
      kh = k.at(0).get<double>();
      kw = k.at(k.size() > 1 ? 1 : 0).get<double>();
    } else {
      kh = kw = k.get<double>();
    }
    return 2.0 * static_cast<double>(out.numel()) * kh * kw * static_cast<double>(in[in.rank() - 1]);
  }
  if (type == "fully_connected" || type == "dense" || type == "linear") {
    const double n_in = static_cast<double>(in.numel() / in[0]);
    return 2.0 * static_cast<double>(out.numel()) * n_in;
  }
  return 0.0;
}

rusage usage_self() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u;
}
double peak_rss_mb() { return static_cast<double>(usage_self().ru_maxrss) / 1024.0; }

std::string env_or_empty(const char* name) { return env::string_setting(name).value_or(""); }

std::string format(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string pct(const json& j, const char* key) {
  if (!j.contains(key)) return "-";
  return format("%.1f%%", 100.0 * j.at(key).get<double>());
}

}  // namespace

// ---- workloads -----------------------------------------------------------------

std::string find_source_file(const std::string& relative) {
  if (file_exists(relative)) return relative;
  const std::string in_tree = std::string(JANUS_SOURCE_DIR) + "/" + relative;
  if (file_exists(in_tree)) return in_tree;
  throw Error("cannot find " + relative + " (neither in the current directory nor in " +
              std::string(JANUS_SOURCE_DIR) + ")");
}

Workload workload_from_run_config(const std::string& path) {
  const json j = read_json(path);
  JANUS_CHECK(j.contains("model") && j.contains("dataset"), path,
              ": a run config needs 'model' and 'dataset' (for --model-config)");
  config_detail::load_config_plugins(j, path);  // before the model names a plugin's layer type
  Workload w;
  w.source = path;
  w.name = j.value("name", stem(path));
  w.model = j.at("model");
  const json& ds = j.at("dataset");
  const std::string dataset = ds.is_object() ? ds.value("name", std::string()) : ds.get<std::string>();
  if (dataset == "cifar10") {
    w.input = {32, 32, 3};
    w.classes = 10;
  } else if (dataset == "fashion_mnist") {
    w.input = {28, 28, 1};
    w.classes = 10;
  } else if (dataset == "iris") {
    w.input = {4};
    w.classes = 3;
  } else {
    throw Error(path + ": unknown dataset '" + dataset + "' (cifar10, fashion_mnist or iris)");
  }
  w.batch = j.value("batch_size", 128);
  return w;
}

Workload load_workload(const std::string& path) {
  const json j = read_json(path);
  if (j.contains("dataset")) return workload_from_run_config(path);
  JANUS_CHECK(j.contains("model") && j.contains("input"), path,
              ": a workload needs 'model' and 'input' (and optionally name, batch, classes), "
              "or is a run config with 'model' and 'dataset'");
  config_detail::load_config_plugins(j, path);
  Workload w;
  w.source = path;
  w.name = j.value("name", stem(path));
  w.model = j.at("model");
  for (const auto& d : j.at("input")) w.input.push_back(d.get<int64_t>());
  w.classes = j.value("classes", 10);
  w.batch = j.value("batch", 128);
  return w;
}

std::vector<Workload> default_workloads() {
  return {load_workload(find_source_file("bench/configs/spec_cnn.json")),
          load_workload(find_source_file("bench/configs/mlp.json")),
          workload_from_run_config(find_source_file("configs/cifar10.json"))};
}

std::vector<std::string> resolve_devices(const std::string& spec) {
  std::vector<std::string> out;
  if (spec == "all" || spec == "cuda") {
    if (spec == "all") out.push_back("cpu");
    const int n = cuda_built() ? cuda_device_count() : 0;
    JANUS_CHECK(spec == "all" || n > 0, "--device cuda: no CUDA device in this build or on this machine");
    for (int i = 0; i < n; ++i) out.push_back("cuda:" + std::to_string(i));
    return out;
  }
  return {spec};
}

// ---- running ---------------------------------------------------------------------

json run_workload(const Workload& w, Device& dev, const Options& o, double peak_gflops) {
  const int batch = o.batch > 0 ? o.batch : w.batch;
  const int classes = w.classes;
  std::vector<int64_t> dims = {batch};
  dims.insert(dims.end(), w.input.begin(), w.input.end());
  const Shape in_shape(dims);

  NeuralNetwork net = NeuralNetwork::from_config(w.model);
  net.build(in_shape, dev);
  // Random inputs in [-1, 1] and random one-hot labels (fixed seed).
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xs(static_cast<size_t>(in_shape.numel()));
  for (auto& v : xs) v = u(rng);
  std::vector<float> ys(static_cast<size_t>(batch) * classes, 0.0f);
  for (int i = 0; i < batch; ++i) ys[static_cast<size_t>(i) * classes + rng() % classes] = 1.0f;
  const Tensor x = Tensor::from_host(xs, in_shape, dev);
  const Tensor y = Tensor::from_host(ys, Shape{batch, classes}, dev);

  // Shapes and FLOPs per layer (node of the model graph).
  const size_t L = net.size();
  const std::vector<std::vector<Shape>> ins = net.node_input_shapes(in_shape);
  std::vector<Shape> outs(L);
  std::vector<double> flops(L, 0.0);
  double forward_total = 0.0;
  for (size_t l = 0; l < L; ++l) {
    outs[l] = net.layer(l).graph_output_shape(ins[l]);
    flops[l] = forward_flops(net.layer(l), ins[l][0], outs[l]);
    forward_total += flops[l];
  }

  SGD sgd(0.9);
  const double lr = 0.01;
  uint64_t step = 0;
  auto train_step = [&] {
    net.set_step(step++);
    const Tensor out = net.forward(x, Mode::Train);
    net.backward(y, out);
    sgd.step(net.named_parameters(), lr);
  };
  auto infer_step = [&] { (void)net.forward(x, Mode::Eval); };

  const Stats train = time_it(o, dev, train_step);
  const long faults0 = usage_self().ru_minflt;
  for (int i = 0; i < 3; ++i) train_step();
  dev.synchronize();
  const double faults_per_step = static_cast<double>(usage_self().ru_minflt - faults0) / 3.0;
  const Stats infer = time_it(o, dev, infer_step);

  const double train_gflops = 3.0 * forward_total / train.best / 1e9;
  const double infer_gflops = forward_total / infer.best / 1e9;
  json result = {{"name", w.name},
                 {"source", w.source},
                 {"batch", batch},
                 {"input", w.input},
                 {"classes", classes},
                 {"forward_gflop_per_batch", forward_total / 1e9},
                 {"train_ms_per_batch", train.best * 1e3},
                 {"train_ms_per_batch_median", train.median * 1e3},
                 {"train_images_per_s", batch / train.best},
                 {"train_images_per_s_median", batch / train.median},
                 {"train_gflops", train_gflops},
                 {"infer_ms_per_batch", infer.best * 1e3},
                 {"infer_ms_per_batch_median", infer.median * 1e3},
                 {"infer_images_per_s", batch / infer.best},
                 {"infer_images_per_s_median", batch / infer.median},
                 {"infer_gflops", infer_gflops},
                 {"minor_page_faults_per_train_step", faults_per_step}};
  if (peak_gflops > 0) {
    result["train_peak_fraction"] = train_gflops / peak_gflops;
    result["infer_peak_fraction"] = infer_gflops / peak_gflops;
  }

  if (o.layers) {
    // Per-layer timings: the same forward / backward as NeuralNetwork, one
    // layer at a time (synchronising after each), each averaged over
    // iters * repeats steps.
    std::vector<double> fwd(L, 0.0), bwd(L, 0.0);
    double loss_time = 0.0;
    // The model's own walker, synchronising after each node.
    struct LayerTimer : PassObserver {
      Device& dev;
      std::vector<double>& fwd;
      std::vector<double>& bwd;
      double& loss;
      bool record = false;
      Clock::time_point t0;
      LayerTimer(Device& d, std::vector<double>& f, std::vector<double>& b, double& l) : dev(d), fwd(f), bwd(b), loss(l) {}
      void begin(Pass, size_t) override { t0 = Clock::now(); }
      bool end(Pass pass, size_t node, const Tensor&) override {
        dev.synchronize();
        if (record) (pass == Pass::Forward ? fwd[node] : pass == Pass::Backward ? bwd[node] : loss) += seconds_since(t0);
        return true;
      }
    } timer(dev, fwd, bwd, loss_time);
    const int steps = o.iters * o.repeats;
    for (int s = -o.warmup; s < steps; ++s) {
      net.set_step(step++);
      timer.record = s >= 0;
      const Tensor h = net.forward(x, Mode::Train, &timer);
      net.backward(y, h, &timer);
      sgd.step(net.named_parameters(), lr);  // timed on its own below
    }
    const Stats update = time_it(o, dev, [&] { sgd.step(net.named_parameters(), lr); });
    json layers = json::array();
    for (size_t l = 0; l < L; ++l) {
      const double f_ms = fwd[l] / steps * 1e3, b_ms = bwd[l] / steps * 1e3;
      std::string input_shapes;
      for (const Shape& in : ins[l]) input_shapes += (input_shapes.empty() ? "" : " ") + in.str();
      json e = {{"name", net.layer(l).name()},
                {"type", net.layer(l).type()},
                {"input", input_shapes},
                {"output", outs[l].str()},
                {"forward_ms", f_ms},
                {"backward_ms", b_ms},
                {"forward_gflop", flops[l] / 1e9}};
      if (const auto* conv = dynamic_cast<const Conv2D*>(&net.layer(l)))
        e["kernel"] = dev.conv2d_kernel(conv->geometry(ins[l][0]), net.activation_dtype());
      if (flops[l] > 0) {
        e["forward_gflops"] = f_ms > 0 ? flops[l] / (f_ms * 1e-3) / 1e9 : 0.0;
        e["backward_gflops"] = b_ms > 0 ? 2 * flops[l] / (b_ms * 1e-3) / 1e9 : 0.0;
        if (peak_gflops > 0 && f_ms + b_ms > 0)
          e["peak_fraction"] = 3 * flops[l] / ((f_ms + b_ms) * 1e-3) / 1e9 / peak_gflops;
      }
      layers.push_back(e);
    }
    result["layers"] = layers;
    result["loss_ms"] = loss_time / steps * 1e3;
    result["sgd_update_ms"] = update.best * 1e3;
  }
  result["peak_rss_mb_so_far"] = peak_rss_mb();
  return result;
}

void print_workload(const json& r, std::ostream& out) {
  out << format("\n== %s  (batch %d, input %s, %.3f GFLOP forward per batch)%s\n",
                r.at("name").get<std::string>().c_str(), r.at("batch").get<int>(), r.at("input").dump().c_str(),
                r.at("forward_gflop_per_batch").get<double>(),
                r.value("simulated", false) ? "  [SIMULATED CUDA device: CPU timings of the simulator, not GPU speed]"
                                            : "");
  out << format("  training : %10.1f images/s  %8.2f ms/batch  %8.1f GFLOP/s  %6s of peak  (median %.1f images/s)\n",
                r.at("train_images_per_s").get<double>(), r.at("train_ms_per_batch").get<double>(),
                r.at("train_gflops").get<double>(), pct(r, "train_peak_fraction").c_str(),
                r.at("train_images_per_s_median").get<double>());
  out << format("  inference: %10.1f images/s  %8.2f ms/batch  %8.1f GFLOP/s  %6s of peak  (median %.1f images/s)\n",
                r.at("infer_images_per_s").get<double>(), r.at("infer_ms_per_batch").get<double>(),
                r.at("infer_gflops").get<double>(), pct(r, "infer_peak_fraction").c_str(),
                r.at("infer_images_per_s_median").get<double>());
  out << format("  minor page faults per training step: %.1f\n",
                r.at("minor_page_faults_per_train_step").get<double>());
  if (!r.contains("layers")) return;
  out << format("  %-20s %-16s %-18s %-18s %9s %9s %9s %9s %7s  %s\n", "layer", "type", "input", "output", "fwd ms",
                "bwd ms", "fwd GF/s", "bwd GF/s", "peak", "kernel");
  for (const auto& e : r.at("layers")) {
    out << format("  %-20s %-16s %-18s %-18s %9.3f %9.3f", e.at("name").get<std::string>().c_str(),
                  e.at("type").get<std::string>().c_str(), e.at("input").get<std::string>().c_str(),
                  e.at("output").get<std::string>().c_str(), e.at("forward_ms").get<double>(),
                  e.at("backward_ms").get<double>());
    if (e.contains("forward_gflops"))
      out << format(" %9.1f %9.1f %7s", e.at("forward_gflops").get<double>(), e.at("backward_gflops").get<double>(),
                    pct(e, "peak_fraction").c_str());
    else
      out << format(" %9s %9s %7s", "-", "-", "-");
    out << (e.contains("kernel") ? "  " + e.at("kernel").get<std::string>() : std::string()) << "\n";
  }
  out << format("  %-20s %-16s %-18s %-18s %9.3f\n", "loss", "", "", "", r.at("loss_ms").get<double>());
  out << format("  %-20s %-16s %-18s %-18s %9.3f\n", "sgd update", "", "", "", r.at("sgd_update_ms").get<double>());
}

json run(const std::vector<Workload>& workloads, const std::vector<std::string>& device_specs, const Options& o,
         std::ostream* out) {
  JANUS_CHECK(o.iters > 0 && o.repeats > 0 && o.warmup >= 0, "bench: iters and repeats must be positive");
  const int threads = internal::janus_threads();
  json report = {{"janus_version", JANUS_VERSION},
                 {"cuda_backend", JANUS_CUDA_MODE},
                 {"omp_num_threads", env_or_empty("OMP_NUM_THREADS")},
                 {"janus_num_threads", env_or_empty("JANUS_NUM_THREADS")},
                 {"cpu_threads", threads > 0 ? threads : internal::available_cpus()},
                 {"cpus_available", internal::available_cpus()},
                 {"iters", o.iters},
                 {"repeats", o.repeats},
                 {"warmup", o.warmup},
                 {"flops_note",
                  "FLOPs = 2 x multiply-adds of conv2d and dense layers as a direct convolution computes them; "
                  "backward = 2 x forward, training step = 3 x forward; other layers (BatchNorm, pooling, "
                  "activations) count 0. Winograd convolutions do fewer multiplications than that, so their "
                  "GFLOP/s (and fraction of peak) can exceed the device's peak"},
                 {"devices", json::array()}};
  for (const std::string& spec : device_specs) {
    Device& dev = get_device(spec);
    const Peak peak = device_peak(spec, dev);
    json d = {{"spec", spec},
              {"device", dev.name()},
              {"kind", dev.kind() == DeviceKind::CPU ? "cpu" : "cuda"},
              {"simulated", dev.simulated()},
              {"peak_gflops", peak.gflops},
              {"peak_formula", peak.formula},
              {"workloads", json::array()}};
    const bool timed = !dev.simulated() || o.time_simulated;
    d["timed"] = timed;
    if (dev.simulated())
      d["note"] = timed ? "simulated CUDA device: these are CPU timings of the CUDA simulator, NOT GPU timings"
                        : "simulated CUDA device (CUDA kernels run on the CPU): not timed, its timings would not be "
                          "GPU speed (--time-simulated times it anyway, labelled)";
    if (out) {
      *out << "\n#### device " << dev.name() << (dev.simulated() ? "  [SIMULATED: not a GPU]" : "") << "\n";
      *out << "  " << peak.formula << "\n";
      if (d.contains("note")) *out << "  note: " << d["note"].get<std::string>() << "\n";
      if (timed)
        *out << format("  best of %d runs x %d steps after %d warm-up steps; training = forward + loss + backward + "
                       "SGD momentum step\n"
                       "  GFLOP/s count a convolution's FLOPs as a direct one does; Winograd layers (CPU: 3x3 "
                       "stride 1, >= 32 channels, maps <= 16x16) do fewer and can exceed the peak\n",
                       o.repeats, o.iters, o.warmup);
      out->flush();
    }
    if (timed) {
      for (const Workload& w : workloads) {
        json r = run_workload(w, dev, o, peak.gflops);
        if (dev.simulated()) r["simulated"] = true;
        if (out) {
          print_workload(r, *out);
          out->flush();
        }
        d["workloads"].push_back(r);
      }
    }
    report["devices"].push_back(d);
  }
  report["peak_rss_mb"] = peak_rss_mb();
  if (out) *out << format("\npeak RSS (whole process): %.1f MiB\n", report["peak_rss_mb"].get<double>());
  return report;
}

// ---- CSV -------------------------------------------------------------------------

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string num(const json& j, const char* key) {
  if (!j.contains(key)) return "";
  return format("%.6g", j.at(key).get<double>());
}

}  // namespace

std::string to_csv(const json& report) {
  std::ostringstream s;
  s << "device,simulated,workload,batch,item,type,input,output,forward_ms,backward_ms,ms_per_batch,images_per_s,"
       "gflop_per_s,forward_gflop_per_s,backward_gflop_per_s,peak_fraction,peak_gflops,kernel\n";
  for (const auto& d : report.at("devices")) {
    const std::string dev = csv_field(d.at("device").get<std::string>());
    const std::string sim = d.at("simulated").get<bool>() ? "true" : "false";
    const std::string peak = num(d, "peak_gflops");
    for (const auto& w : d.at("workloads")) {
      const std::string head = dev + "," + sim + "," + csv_field(w.at("name").get<std::string>()) + "," +
                               std::to_string(w.at("batch").get<int>()) + ",";
      const std::string in = csv_field(w.at("input").dump());
      s << head << "training,," << in << ",,,," << num(w, "train_ms_per_batch") << ","
        << num(w, "train_images_per_s") << "," << num(w, "train_gflops") << ",,," << num(w, "train_peak_fraction")
        << "," << peak << ",\n";
      s << head << "inference,," << in << ",,,," << num(w, "infer_ms_per_batch") << ","
        << num(w, "infer_images_per_s") << "," << num(w, "infer_gflops") << ",,," << num(w, "infer_peak_fraction")
        << "," << peak << ",\n";
      if (!w.contains("layers")) continue;
      for (const auto& e : w.at("layers")) {
        s << head << csv_field(e.at("name").get<std::string>()) << "," << csv_field(e.at("type").get<std::string>())
          << "," << csv_field(e.at("input").get<std::string>()) << "," << csv_field(e.at("output").get<std::string>())
          << "," << num(e, "forward_ms") << "," << num(e, "backward_ms") << ",,,," << num(e, "forward_gflops") << ","
          << num(e, "backward_gflops") << "," << num(e, "peak_fraction") << "," << peak << ","
          << csv_field(e.value("kernel", std::string())) << "\n";
      }
    }
  }
  return s.str();
}

}  // namespace janus::bench
