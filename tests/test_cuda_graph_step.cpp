// The training step recorded as a CUDA graph and replayed (train_step.hpp,
// step_graph.hpp), on the simulator, whose stream capture refuses what a GPU
// refuses (test_sim_graph). A run with graphs must equal, bit for bit, the
// same run without: weights, BatchNorm running statistics, optimizer state
// and the loss and correct sums, for plain SGD, momentum SGD, Adam (its step
// count), a model with BatchNorm and dropout (a new seed every step) and a
// one-cycle schedule (a new learning rate every step). A replayed step is one
// graph launch and no kernel launch from the host; a smaller last batch runs
// uncaptured and the kept graph is replayed again afterwards.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "janus/device.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"
#include "janus/scheduler.hpp"
#include "janus/step_capture.hpp"
#include "janus/tensor.hpp"
#include "lagging_device.hpp"
#include "test_cuda_device.hpp"
#include "train/running_metrics.hpp"
#include "train/train_step.hpp"

using namespace janus;
using janus::train_detail::EpochTotals;
using janus::train_detail::RunningMetrics;
using janus::train_detail::TrainStep;

namespace {

constexpr int kClasses = 5;
constexpr int kPools = 2;  // graphs kept, one per memory pool (step_graph.hpp)
// A pool's first two recordings may differ in addresses (fresh blocks come in
// cudaMalloc order, later ones in address order): at most this many
// instantiations, then every recording is replayed.
constexpr int kMaxInstantiations = 2 * kPools;

// Convolution, BatchNorm (+ ReLU, fused), max pooling, dropout, dense.
const char* kCnn = R"({"seed": 3, "loss": "cross_entropy", "layers": [
    {"type": "conv2d", "n_out": 4, "kernel": 3, "pad": "same", "bias": false},
    {"type": "batchnorm"}, {"type": "relu"},
    {"type": "pool2d", "mode": "max", "kernel": 2, "stride": 2},
    {"type": "flatten"}, {"type": "dropout", "p": 0.25},
    {"type": "fully_connected", "n_out": 5}]})";
// Dense layers only (cuBLAS on the capturing stream).
const char* kMlp = R"({"seed": 5, "loss": "cross_entropy", "layers": [
    {"type": "flatten"}, {"type": "fully_connected", "n_out": 16, "activation": "relu"},
    {"type": "fully_connected", "n_out": 5}]})";

// Batch `i` of a fixed synthetic stream: `rows` images 8x8x3.
Batch synthetic_batch(int i, int rows = 6) {
  Batch b;
  b.size = rows;
  b.x_shape = Shape{rows, 8, 8, 3};
  b.x.resize(static_cast<size_t>(rows) * 8 * 8 * 3);
  for (size_t k = 0; k < b.x.size(); ++k)
    b.x[k] = static_cast<float>((k * 37 + static_cast<size_t>(i) * 11) % 17) / 8.0f - 1.0f;
  b.y_onehot.assign(static_cast<size_t>(rows) * kClasses, 0.0f);
  for (int r = 0; r < rows; ++r) b.y_onehot[static_cast<size_t>(r * kClasses + (i + r) % kClasses)] = 1.0f;
  return b;
}

struct Case {
  const char* name;
  const char* model;
  const char* optimizer;
  const char* schedule;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

struct Trainee {
  NeuralNetwork model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Scheduler> schedule;
  Trainee(Device& d, const Case& c)
      : model(NeuralNetwork::from_config(nlohmann::json::parse(c.model))),
        optimizer(make_optimizer(nlohmann::json::parse(c.optimizer))),
        schedule(make_scheduler(nlohmann::json::parse(c.schedule))) {
    model.build(Shape{6, 8, 8, 3}, d);
  }
  // Every tensor a checkpoint holds (parameters, buffers), then the optimizer's state.
  std::vector<std::vector<float>> state() {
    std::vector<std::vector<float>> s;
    for (auto& [name, t] : model.state()) s.push_back(t->to_host_f32());
    for (auto& [name, t] : optimizer->state()) s.push_back(t.to_host_f32());
    return s;
  }
};

// Trains `steps` steps (batch sizes from `rows(i)`), reading the running
// metrics every 3 steps; returns the reads.
template <class Rows>
std::vector<EpochTotals> train(Trainee& run, Device& gpu, bool graphs, int steps, Rows rows, std::ostream& log,
                               TrainStep** out_step = nullptr, std::vector<int>* graph_steps = nullptr,
                               std::vector<int>* replayed_steps = nullptr) {
  static std::vector<std::unique_ptr<TrainStep>> keep;  // outlives the call when the test inspects it
  keep.push_back(std::make_unique<TrainStep>(run.model, *run.optimizer, *run.schedule, gpu, kClasses, false));
  TrainStep& step = *keep.back();
  if (graphs) step.enable_cuda_graph(log);
  if (out_step) *out_step = &step;
  RunningMetrics metrics(gpu);
  metrics.reset(EpochTotals{});
  std::vector<EpochTotals> reads;
  for (int i = 0; i < steps; ++i) {
    const int64_t launches = step.graph_launches(), replays = step.graph_replays();
    step.run(synthetic_batch(i, rows(i)), i, metrics);
    if (graph_steps && step.graph_launches() > launches) graph_steps->push_back(i);
    if (replayed_steps && step.graph_replays() > replays) replayed_steps->push_back(i);
    if (i % 3 == 2) reads.push_back(metrics.read());
  }
  reads.push_back(metrics.read());
  return reads;
}

void expect_same(const std::vector<EpochTotals>& a, const std::vector<EpochTotals>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].loss_sum, b[i].loss_sum) << "read " << i;
    EXPECT_EQ(a[i].correct, b[i].correct) << "read " << i;
    EXPECT_EQ(a[i].seen, b[i].seen) << "read " << i;
  }
}

class GraphStep : public ::testing::TestWithParam<Case> {};

TEST_P(GraphStep, BitIdenticalToTheUncapturedStep) {
  Device& gpu = get_device(test::cuda_device_under_test());
  ASSERT_NE(gpu.step_capture(), nullptr);
  const Case& c = GetParam();
  constexpr int kSteps = 9;
  auto full = [](int) { return 6; };
  Trainee plain(gpu, c), graphed(gpu, c);
  std::ostringstream log;
  const std::vector<EpochTotals> want = train(plain, gpu, false, kSteps, full, log);
  TrainStep* step = nullptr;
  std::vector<int> graph_steps, replayed;
  const std::vector<EpochTotals> got = train(graphed, gpu, true, kSteps, full, log, &step, &graph_steps, &replayed);
  expect_same(got, want);
  const auto a = graphed.state(), b = plain.state();
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k], b[k]) << "tensor " << k << " of the model and optimizer";
  // The steps after the warm-up ran as graphs, and the last ones replayed kept
  // graphs (step_graph.hpp).
  EXPECT_EQ(graph_steps.size(), static_cast<size_t>(kSteps - TrainStep::kWarmupSteps));
  EXPECT_EQ(graph_steps.front(), TrainStep::kWarmupSteps);
  EXPECT_LE(step->graph_launches() - step->graph_replays(), kMaxInstantiations);
  const std::vector<int> tail(graph_steps.begin() + kMaxInstantiations, graph_steps.end());
  EXPECT_TRUE(std::includes(replayed.begin(), replayed.end(), tail.begin(), tail.end()))
      << "a step after the first recordings of each pool was not a replay";
  EXPECT_EQ(log.str(), "") << "nothing to fall back from";
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, GraphStep,
    ::testing::Values(
        Case{"PlainSgd", kMlp, R"({"type": "sgd"})", R"({"type": "constant", "lr": 0.05})"},
        Case{"MomentumSgdCnn", kCnn, R"({"type": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 1e-3})",
             R"({"type": "constant", "lr": 0.05})"},
        Case{"AdamCnn", kCnn, R"({"type": "adam", "weight_decay": 1e-3})", R"({"type": "constant", "lr": 0.01})"},
        Case{"AdamWOneCycleCnn", kCnn, R"({"type": "adamw", "weight_decay": 1e-2})",
             R"({"type": "onecycle", "lr": 0.05, "total_steps": 9})"},
        Case{"SgdOneCycleMlp", kMlp, R"({"type": "sgd", "momentum": 0.9})",
             R"({"type": "onecycle", "lr": 0.1, "total_steps": 9, "pct_start": 0.4})"}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(GraphStepLaunches, AReplayedStepIsOneGraphLaunchAndNoKernelLaunch) {
  Device& gpu = get_device(test::cuda_device_under_test());
  const Case c{"", kCnn, R"({"type": "adam"})", R"({"type": "onecycle", "lr": 0.05, "total_steps": 14})"};
  Trainee run(gpu, c);
  TrainStep step(run.model, *run.optimizer, *run.schedule, gpu, kClasses, false);
  std::ostringstream log;
  step.enable_cuda_graph(log);
  RunningMetrics metrics(gpu);
  metrics.reset(EpochTotals{});
  // Warm-up, then the first recordings into each pool.
  const int first = TrainStep::kWarmupSteps + kMaxInstantiations;
  for (int i = 0; i < first; ++i) step.run(synthetic_batch(i), i, metrics);
  ASSERT_EQ(step.graph_launches(), kMaxInstantiations);
  // On a device one step behind the host (a GPU-bound run): the three
  // uploads of a replayed step (x, y, the step block) wait for nothing, and
  // none rewrites a pinned buffer whose copy is pending.
  const unsigned long long overwrites = sim::pinned_overwrites();
  janus::test::LaggingDevice lag;
  janus::test::OneStepBehind device;
  for (int i = first; i < 14; ++i) {
    device.begin_step();
    const int64_t replays = step.graph_replays();
    const unsigned long long graphs = sim::graph_launch_count(), kernels = sim::stream_launch_count(),
                             run_kernels = sim::launch_count(), waits = sim::host_waits();
    step.run(synthetic_batch(i), i, metrics);
    EXPECT_EQ(sim::graph_launch_count(), graphs + 1) << "step " << i;
    EXPECT_EQ(sim::stream_launch_count(), kernels) << "step " << i << " launched kernels outside the graph";
    EXPECT_GT(sim::launch_count(), run_kernels + 10) << "the graph ran the step's kernels";
    EXPECT_EQ(sim::host_waits(), waits) << "step " << i << " waited for the device";
    EXPECT_EQ(step.graph_replays(), replays + 1) << "step " << i << " was not a replay";
  }
  sim::set_device_lag(false);
  EXPECT_EQ(sim::pinned_overwrites(), overwrites) << "a pinned buffer was written while its copy was pending";
}

// The last, smaller batch of an epoch runs uncaptured (said once in the log);
// the next full batch replays the kept graph; all bit-identical to no graphs.
TEST(GraphStepShapes, ASmallerLastBatchFallsBackThenTheGraphIsReplayed) {
  Device& gpu = get_device(test::cuda_device_under_test());
  const Case c{"", kCnn, R"({"type": "sgd", "momentum": 0.9})", R"({"type": "onecycle", "lr": 0.05, "total_steps": 14})"};
  auto rows = [](int i) { return i % 5 == 4 ? 4 : 6; };  // "epochs" of 5 batches, the last one of 4
  Trainee plain(gpu, c), graphed(gpu, c);
  std::ostringstream plain_log, log;
  const std::vector<EpochTotals> want = train(plain, gpu, false, 14, rows, plain_log);
  TrainStep* step = nullptr;
  std::vector<int> graph_steps, replayed;
  const std::vector<EpochTotals> got = train(graphed, gpu, true, 14, rows, log, &step, &graph_steps, &replayed);
  expect_same(got, want);
  const auto a = graphed.state(), b = plain.state();
  for (size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k], b[k]) << "tensor " << k;
  EXPECT_EQ(graph_steps, (std::vector<int>{2, 3, 5, 6, 7, 8, 10, 11, 12, 13}));
  const std::vector<int> after_fallbacks{10, 11, 12, 13};  // the third "epoch"
  EXPECT_TRUE(std::includes(replayed.begin(), replayed.end(), after_fallbacks.begin(), after_fallbacks.end()))
      << "the kept graphs were not replayed after the fallbacks";
  EXPECT_LE(step->graph_launches() - step->graph_replays(), kMaxInstantiations);
  const std::string text = log.str();
  EXPECT_NE(text.find("batch (4, 8, 8, 3) is not the graph's (6, 8, 8, 3)"), std::string::npos) << text;
  EXPECT_EQ(text.find("cuda-graph:"), text.rfind("cuda-graph:")) << "the fallback is said once: " << text;
}

TEST(GraphStepFallback, CheckNumericsRunsUncapturedAndSaysSo) {
  Device& gpu = get_device(test::cuda_device_under_test());
  const Case c{"", kMlp, R"({"type": "sgd"})", R"({"type": "constant", "lr": 0.05})"};
  Trainee run(gpu, c);
  TrainStep step(run.model, *run.optimizer, *run.schedule, gpu, kClasses, /*check_numerics=*/true);
  std::ostringstream log;
  step.enable_cuda_graph(log);
  RunningMetrics metrics(gpu);
  metrics.reset(EpochTotals{});
  for (int i = 0; i < 5; ++i) step.run(synthetic_batch(i), i, metrics);
  EXPECT_EQ(step.graph_launches(), 0);
  EXPECT_NE(log.str().find("--check-numerics"), std::string::npos) << log.str();
}

// The kept graph is replayed only when the recording gave the device's ops
// the same addresses, of tensors of every dtype: a step whose float64 totals
// moved (a new RunningMetrics, say) is instantiated anew, not replayed
// writing into the old ones.
TEST(GraphStepAddresses, AMovedFloat64TensorIsNotReplayedIntoTheOldAddress) {
  Device& gpu = get_device(test::cuda_device_under_test());
  StepCapture* capture = gpu.step_capture();
  ASSERT_NE(capture, nullptr);
  capture->reset();
  Tensor yhat = Tensor::from_host(std::vector<float>{0, 1, 1, 0}, Shape{2, 2}, gpu);
  Tensor y = Tensor::from_host(std::vector<float>{0, 1, 0, 1}, Shape{2, 2}, gpu);  // one row right
  const std::vector<double> zero(Device::StepTotal::Count, 0.0);
  Tensor first = Tensor::from_host(zero, Shape{Device::StepTotal::Count}, gpu, DType::F64);
  Tensor second = Tensor::from_host(zero, Shape{Device::StepTotal::Count}, gpu, DType::F64);
  auto correct = [](const Tensor& totals) { return totals.to_host()[Device::StepTotal::Correct]; };
  auto record = [&](Tensor& totals) {
    capture->begin();
    gpu.count_correct_into(yhat, y, totals);
    return capture->end();
  };
  // Until both pools replay their kept graph (the first recordings of a
  // pool may get other addresses for their scratch).
  int steps = 0, replays_in_a_row = 0;
  for (; steps < 4 * kMaxInstantiations && replays_in_a_row < kPools; ++steps)
    replays_in_a_row = record(first) ? replays_in_a_row + 1 : 0;
  ASSERT_EQ(replays_in_a_row, kPools) << "the same step was never replayed";
  ASSERT_EQ(correct(first), static_cast<double>(steps));
  EXPECT_FALSE(record(second)) << "replayed a graph that writes the float64 totals at their old address";
  EXPECT_EQ(correct(second), 1.0) << "the step did not count into the tensor it was given";
  EXPECT_EQ(correct(first), static_cast<double>(steps)) << "the old totals were written";
  capture->reset();
}

// A capture-breaking operation inside the step (planted: a read-back, as a
// loss returned to the host would be) fails the recording with the runtime's
// error, names the step, and leaves the device usable.
TEST(GraphStepFallback, AHostReadInsideTheStepFailsTheRecordingClearly) {
  Device& gpu = get_device(test::cuda_device_under_test());
  StepCapture* capture = gpu.step_capture();
  ASSERT_NE(capture, nullptr);
  Tensor t = Tensor::zeros(Shape{4}, gpu);
  capture->begin();
  EXPECT_THROW(static_cast<void>(t.to_host_f32()), Error);  // cudaStreamSynchronize inside the capture
  try {
    capture->end();
    ADD_FAILURE() << "end() of an invalidated capture returned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaErrorStreamCaptureInvalidated"), std::string::npos) << e.what();
  }
  gpu.fill(t, 2.0);
  EXPECT_EQ(t.to_host_f32(), std::vector<float>(4, 2.0f)) << "the device works after the failed recording";
}

}  // namespace
