// End-to-end model tests on the CPU: a two-layer network trained on Iris
// reaches >= 95% test accuracy with a fixed seed; checkpoints round-trip the
// predictions bit for bit and the optimizer state exactly; the checkpoint is a
// valid safetensors file as an independent (Python) reader sees it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "janus/data.hpp"
#include "janus/janus.hpp"

#ifndef JANUS_SOURCE_DIR
#error "test_model needs JANUS_SOURCE_DIR (set in tests/CMakeLists.txt)"
#endif

namespace janus {
namespace {

Device& cpu() { return cpu_device(); }

bool file_exists(const std::string& p) { return static_cast<bool>(std::ifstream(p)); }

std::string iris_path() {
  const std::string bundled = std::string(JANUS_SOURCE_DIR) + "/datasets/iris.csv";
  if (file_exists(bundled)) return bundled;
  return std::string(JANUS_SOURCE_DIR) + "/../shared/data/iris.csv";
}

std::string temp_path(const std::string& stem) {
  return ::testing::TempDir() + "janus_test_model_" + std::to_string(::getpid()) + "_" + stem;
}

// A file removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& stem) : path(temp_path(stem)) {}
  ~TempFile() { std::remove(path.c_str()); }
};

struct Tensors {
  Tensor x, y;
};

// Samples `idx` of a dataset as (n, 4) inputs and (n, k) one-hot targets.
Tensors to_tensors(const Dataset& d, const std::vector<size_t>& idx) {
  const auto n = static_cast<int64_t>(idx.size());
  const auto f = static_cast<int64_t>(d.sample_numel());
  std::vector<float> x(static_cast<size_t>(n * f)), y(static_cast<size_t>(n * d.num_classes), 0.0f);
  for (size_t i = 0; i < idx.size(); ++i) {
    std::memcpy(&x[i * static_cast<size_t>(f)], d.sample(idx[i]), static_cast<size_t>(f) * sizeof(float));
    y[i * static_cast<size_t>(d.num_classes) + static_cast<size_t>(d.labels[idx[i]])] = 1.0f;
  }
  return {Tensor::from_host(x, Shape{n, f}, cpu()), Tensor::from_host(y, Shape{n, d.num_classes}, cpu())};
}

std::vector<size_t> all_indices(const Dataset& d) {
  std::vector<size_t> v(d.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

NeuralNetwork make_iris_net(uint64_t seed) {
  return NeuralNetwork::from_config({{"seed", seed},
                                     {"loss", "cross_entropy"},
                                     {"layers",
                                      {{{"type", "fully_connected"}, {"name", "hidden"}, {"n_out", 16},
                                        {"activation", "tanh"}},
                                       {{"type", "fully_connected"}, {"name", "out"}, {"n_out", 3},
                                        {"activation", "softmax"}}}}});
}

double accuracy(NeuralNetwork& net, const Tensors& t) {
  Tensor yhat = net.forward(t.x, Mode::Eval);
  return static_cast<double>(cpu().count_correct(yhat, t.y)) / static_cast<double>(t.x.dim(0));
}

// The trained Iris setup shared by the tests below (trained once).
struct IrisRun {
  Split split;
  Tensors train, test;
  std::unique_ptr<NeuralNetwork> net;
  std::unique_ptr<SGD> opt;
  double lr = 0.05;
  double final_train_loss = 0.0, test_accuracy = 0.0;
};

const IrisRun& iris_run() {
  static IrisRun* run = [] {
    auto* r = new IrisRun;
    Dataset iris = load_iris_csv(iris_path());
    EXPECT_EQ(iris.size(), 150u);
    EXPECT_EQ(iris.num_classes, 3);
    r->split = split_random(iris, 0.2, /*seed=*/42, /*stratified=*/true);
    Standardizer st;
    st.fit(r->split.train);  // training statistics only
    st.apply(r->split.train);
    st.apply(r->split.validation);
    r->train = to_tensors(r->split.train, all_indices(r->split.train));
    r->test = to_tensors(r->split.validation, all_indices(r->split.validation));

    r->net = std::make_unique<NeuralNetwork>(make_iris_net(7));
    r->opt = std::make_unique<SGD>(0.9);
    const size_t batch = 16, n = r->split.train.size();
    for (int epoch = 0; epoch < 60; ++epoch) {
      const std::vector<size_t> perm = seeded_permutation(n, 2024, static_cast<uint64_t>(epoch));
      double sum = 0;
      int batches = 0;
      for (size_t b = 0; b < n; b += batch) {
        std::vector<size_t> idx(perm.begin() + static_cast<std::ptrdiff_t>(b),
                                perm.begin() + static_cast<std::ptrdiff_t>(std::min(n, b + batch)));
        Tensors t = to_tensors(r->split.train, idx);
        Tensor out = r->net->forward(t.x, Mode::Train);
        sum += r->net->backward(t.y, out);
        ++batches;
        r->opt->step(r->net->named_parameters(), r->lr);
      }
      r->final_train_loss = sum / batches;
    }
    r->test_accuracy = accuracy(*r->net, r->test);
    return r;
  }();
  return *run;
}

TEST(IrisModel, SplitIsStratifiedAndStandardised) {
  const IrisRun& r = iris_run();
  EXPECT_EQ(r.split.train.size(), 120u);
  EXPECT_EQ(r.split.validation.size(), 30u);
  std::vector<int> per_class(3, 0);
  for (int l : r.split.validation.labels) ++per_class.at(static_cast<size_t>(l));
  EXPECT_EQ(per_class, (std::vector<int>{10, 10, 10}));
  // Training features have mean ~0 and population std ~1 after standardising.
  for (size_t f = 0; f < 4; ++f) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < r.split.train.size(); ++i) {
      const double v = r.split.train.sample(i)[f];
      s += v;
      s2 += v * v;
    }
    const double mean = s / 120.0, var = s2 / 120.0 - mean * mean;
    EXPECT_NEAR(mean, 0.0, 1e-5) << "feature " << f;
    EXPECT_NEAR(var, 1.0, 1e-4) << "feature " << f;
  }
}

TEST(IrisModel, TwoLayerNetworkReaches95PercentTestAccuracy) {
  const IrisRun& r = iris_run();
  EXPECT_TRUE(r.net->uses_fused_softmax_cross_entropy());
  EXPECT_LT(r.final_train_loss, 0.15);
  EXPECT_GE(r.test_accuracy, 0.95) << "test accuracy " << r.test_accuracy;
  std::printf("iris: final train loss %.4f, test accuracy %.4f (%d/30)\n", r.final_train_loss, r.test_accuracy,
              static_cast<int>(std::lround(r.test_accuracy * 30)));
}

TEST(IrisModel, TrainingIsReproducible) {
  // A second run of the same recipe gives identical weights (no hidden state).
  const IrisRun& r = iris_run();
  NeuralNetwork net = make_iris_net(7);
  SGD opt(0.9);
  const size_t batch = 16, n = r.split.train.size();
  for (int epoch = 0; epoch < 60; ++epoch) {
    const std::vector<size_t> perm = seeded_permutation(n, 2024, static_cast<uint64_t>(epoch));
    for (size_t b = 0; b < n; b += batch) {
      std::vector<size_t> idx(perm.begin() + static_cast<std::ptrdiff_t>(b),
                              perm.begin() + static_cast<std::ptrdiff_t>(std::min(n, b + batch)));
      Tensors t = to_tensors(r.split.train, idx);
      Tensor out = net.forward(t.x, Mode::Train);
      net.backward(t.y, out);
      opt.step(net.named_parameters(), r.lr);
    }
  }
  auto a = net.named_parameters();
  auto b = r.net->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].parameter->value.to_host(), b[i].parameter->value.to_host()) << a[i].name;
}

TEST(Checkpoint, PredictionsRoundTripBitForBit) {
  const IrisRun& r = iris_run();
  TempFile f("predictions.safetensors");
  save_checkpoint(f.path, *r.net, r.opt.get(), {{"note", "iris test"}});
  NeuralNetwork loaded = load_model(f.path, cpu());
  EXPECT_EQ(loaded.config(), r.net->config());
  EXPECT_EQ(loaded.input_shape().dims().back(), 4);

  Tensor a = r.net->forward(r.test.x, Mode::Eval);
  Tensor b = loaded.forward(r.test.x, Mode::Eval);
  ASSERT_EQ(a.shape(), b.shape());
  ASSERT_EQ(a.dtype(), b.dtype());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.bytes())) << "predictions differ after the round trip";
  // Every stored tensor equals the original bit for bit, and metadata survives.
  SafetensorsFile sf = read_safetensors(f.path);
  EXPECT_EQ(sf.metadata.at("note"), "iris test");
  for (const NamedParameter& np : r.net->named_parameters()) {
    ASSERT_TRUE(sf.tensors.count(np.name)) << np.name;
    const Tensor& t = sf.tensors.at(np.name);
    ASSERT_EQ(t.bytes(), np.parameter->value.bytes());
    EXPECT_EQ(0, std::memcmp(t.raw(), np.parameter->value.raw(), t.bytes())) << np.name;
  }
}

// One optimisation step of `net` with `opt` on a fixed batch.
void one_step(NeuralNetwork& net, Optimizer& opt, const Tensors& t, double lr) {
  Tensor out = net.forward(t.x, Mode::Train);
  net.backward(t.y, out);
  opt.step(net.named_parameters(), lr);
}

bool same_parameters(NeuralNetwork& a, NeuralNetwork& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i) {
    const Tensor &x = pa[i].parameter->value, &y = pb[i].parameter->value;
    if (pa[i].name != pb[i].name || x.bytes() != y.bytes() || std::memcmp(x.raw(), y.raw(), x.bytes()) != 0)
      return false;
  }
  return true;
}

TEST(Checkpoint, OptimizerStateRoundTrip) {
  const IrisRun& r = iris_run();
  // Continue from a copy of the trained run, so that the shared run stays as it is.
  TempFile f0("opt0.safetensors");
  save_checkpoint(f0.path, *r.net, r.opt.get());
  NeuralNetwork original = load_model(f0.path, cpu());
  SGD original_opt(0.9);
  load_checkpoint_into(f0.path, original, &original_opt);
  EXPECT_EQ(original_opt.steps(), r.opt->steps());
  EXPECT_EQ(original_opt.state().size(), 4u);  // velocity of hidden.W, hidden.b, out.W, out.b

  Tensors batch = to_tensors(r.split.train, {0, 5, 17, 33, 64, 90, 101, 119});
  one_step(original, original_opt, batch, r.lr);  // velocity now differs from the trained run's

  TempFile f("opt.safetensors");
  save_checkpoint(f.path, original, &original_opt);
  NeuralNetwork restored = load_model(f.path, cpu());
  SGD restored_opt(0.9);
  load_checkpoint_into(f.path, restored, &restored_opt);
  EXPECT_EQ(restored_opt.steps(), original_opt.steps());
  ASSERT_TRUE(same_parameters(original, restored));
  for (auto& [name, t] : original_opt.state()) {
    ASSERT_TRUE(restored_opt.state().count(name)) << name;
    const Tensor& u = restored_opt.state().at(name);
    ASSERT_EQ(u.bytes(), t.bytes()) << name;
    EXPECT_EQ(0, std::memcmp(u.raw(), t.raw(), t.bytes())) << name;
  }

  // A model restored without its optimizer state steps differently: the
  // velocity matters, so the comparison below is not vacuous.
  NeuralNetwork stateless = load_model(f.path, cpu());
  SGD fresh_opt(0.9);
  one_step(stateless, fresh_opt, batch, r.lr);

  one_step(original, original_opt, batch, r.lr);
  one_step(restored, restored_opt, batch, r.lr);
  EXPECT_TRUE(same_parameters(original, restored)) << "one more step diverged after restoring the optimizer";
  EXPECT_FALSE(same_parameters(original, stateless)) << "velocity had no effect; the test proves nothing";
}

TEST(Checkpoint, AdamStateRoundTrip) {
  const IrisRun& r = iris_run();
  TempFile f0("adam0.safetensors");
  save_checkpoint(f0.path, *r.net, nullptr);
  NeuralNetwork a = load_model(f0.path, cpu());
  Adam adam_a(0.9, 0.999, 1e-8, 1e-4, true);
  Tensors batch = to_tensors(r.split.train, {1, 2, 3, 40, 41, 80, 81, 82});
  for (int i = 0; i < 3; ++i) one_step(a, adam_a, batch, 0.01);

  TempFile f("adam.safetensors");
  save_checkpoint(f.path, a, &adam_a);
  NeuralNetwork b = load_model(f.path, cpu());
  Adam adam_b(0.9, 0.999, 1e-8, 1e-4, true);
  load_checkpoint_into(f.path, b, &adam_b);
  EXPECT_EQ(adam_b.steps(), 3);
  EXPECT_EQ(adam_b.state().size(), 8u);  // m and v of four parameters
  one_step(a, adam_a, batch, 0.01);
  one_step(b, adam_b, batch, 0.01);
  EXPECT_TRUE(same_parameters(a, b));
}

// An optimizer keeps the state slots it found for each parameter from step to
// step; a checkpoint loaded into one that has stepped replaces its state, and
// the next step must start from the loaded state, as a fresh optimizer does.
TEST(Checkpoint, LoadIntoAnOptimizerThatHasStepped) {
  const IrisRun& r = iris_run();
  TempFile f("rollback.safetensors");
  save_checkpoint(f.path, *r.net, r.opt.get());
  Tensors batch = to_tensors(r.split.train, {2, 7, 19, 35, 66, 92, 103, 118});
  NeuralNetwork a = load_model(f.path, cpu());
  SGD opt_a(0.9);
  load_checkpoint_into(f.path, a, &opt_a);
  for (int i = 0; i < 2; ++i) one_step(a, opt_a, batch, r.lr);  // slots kept, velocity moved on
  load_checkpoint_into(f.path, a, &opt_a);                       // back to the checkpoint
  NeuralNetwork b = load_model(f.path, cpu());
  SGD opt_b(0.9);
  load_checkpoint_into(f.path, b, &opt_b);
  ASSERT_TRUE(same_parameters(a, b));
  one_step(a, opt_a, batch, r.lr);
  one_step(b, opt_b, batch, r.lr);
  EXPECT_TRUE(same_parameters(a, b)) << "the step after the load did not start from the loaded state";
}

// An independent reader: Python's `safetensors` package itself (README:
// "readable by Python's safetensors"), which validates the header, dtypes,
// shapes and that the tensors' byte ranges tile the data section, prints each
// tensor's dtype, shape and sum, compared below with Janus's view of the file.
// Debian does not package it: the fixture test setup.python_env installs a
// pinned release into a venv in the build folder (scripts/python_test_env.sh).
TEST(Checkpoint, FileIsValidSafetensorsForPython) {
  const std::string python = JANUS_TEST_PYTHON;
  if (!file_exists(python))
    GTEST_SKIP() << "no Python environment with safetensors at " << python
                 << " (CTest's setup.python_env test makes it: it needs python3, python3-venv and PyPI)";
  const IrisRun& r = iris_run();
  TempFile ckpt("py.safetensors");
  TempFile script("check.py");
  TempFile out("py.out");
  save_checkpoint(ckpt.path, *r.net, r.opt.get());
  {
    std::ofstream py(script.path);
    py << R"PY(
import sys
from safetensors import safe_open
from safetensors.numpy import load_file
path, out = sys.argv[1], sys.argv[2]
tensors = load_file(path)
with safe_open(path, framework="numpy") as f:
    meta = f.metadata()
assert meta["format"] == "janus-checkpoint", meta
rows = []
for name, a in sorted(tensors.items()):
    rows.append("%s %s %s %.17g" % (name, {"float32": "F32", "float64": "F64"}[str(a.dtype)],
                                   "x".join(map(str, a.shape)) or "scalar", float(a.astype("float64").sum())))
import safetensors
with open(out, "w") as f:
    f.write("safetensors " + safetensors.__version__ + "\n" + "\n".join(rows) + "\n")
)PY";
  }
  const std::string cmd = python + " '" + script.path + "' '" + ckpt.path + "' '" + out.path + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "python could not read the checkpoint: " << cmd;

  std::ifstream in(out.path);
  std::string reader;
  std::getline(in, reader);
  std::printf("checkpoint read back by Python (%s reader)\n", reader.c_str());
  std::map<std::string, std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    rows[name] = line;
  }
  SafetensorsFile sf = read_safetensors(ckpt.path);
  ASSERT_EQ(rows.size(), sf.tensors.size());
  for (const auto& [name, t] : sf.tensors) {
    ASSERT_TRUE(rows.count(name)) << name;
    std::istringstream ls(rows[name]);
    std::string n, dtype, shape;
    double sum = 0;
    ls >> n >> dtype >> shape >> sum;
    EXPECT_EQ(dtype, t.dtype() == DType::F32 ? "F32" : "F64") << name;
    std::string expected_shape;
    for (int64_t d : t.shape().dims()) expected_shape += (expected_shape.empty() ? "" : "x") + std::to_string(d);
    EXPECT_EQ(shape, expected_shape.empty() ? "scalar" : expected_shape) << name;
    double s = 0;
    for (double v : t.to_host()) s += v;
    EXPECT_NEAR(sum, s, 1e-9 * (1 + std::fabs(s))) << name;
  }
}

}  // namespace
}  // namespace janus
