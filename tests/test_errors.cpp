// User errors: every one throws janus::Error (never aborts, never a silent
// NaN) whose message names the thing at fault: the layer, the shapes, the
// option, the device or the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

#include "error_message.hpp"

namespace janus {
namespace {

using janus::test::error_of;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

Device& cpu() { return cpu_device(); }

Tensor zeros(const Shape& s) { return Tensor::zeros(s, cpu()); }
Tensor ones(const Shape& s) { return Tensor::full(s, 1.0, cpu()); }

NeuralNetwork net_of(nlohmann::json layers, const std::string& loss = "cross_entropy") {
  return NeuralNetwork::from_config({{"layers", layers}, {"loss", loss}, {"seed", 1}});
}

// ---- shapes ---------------------------------------------------------------------

TEST(ShapeErrors, DenseBuiltForFourFeaturesFedFive) {
  FullyConnected fc("hidden", 8, ActivationKind::ReLU);
  fc.forward(ones({2, 4}), true);
  const std::string msg = error_of([&] { fc.forward(ones({2, 5}), true); });
  EXPECT_THAT(msg, AllOf(HasSubstr("hidden"), HasSubstr("fully_connected"), HasSubstr("4"), HasSubstr("(2, 5)")));
}

TEST(ShapeErrors, DenseBuiltForFourFeaturesFedFiveInsideANetwork) {
  NeuralNetwork net = net_of({{{"type", "dense"}, {"name", "fc1"}, {"n_out", 3}, {"activation", "softmax"}}});
  net.forward(ones({2, 4}), Mode::Train);
  const std::string msg = error_of([&] { net.forward(ones({3, 5}), Mode::Train); });
  EXPECT_THAT(msg, AllOf(HasSubstr("fc1"), HasSubstr("4"), HasSubstr("(3, 5)")));
}

TEST(ShapeErrors, DenseOnImagesWithoutFlatten) {
  FullyConnected fc("classifier", 10);
  const std::string msg = error_of([&] { fc.forward(ones({2, 4, 4, 3}), true); });
  EXPECT_THAT(msg, AllOf(HasSubstr("classifier"), HasSubstr("(2, 4, 4, 3)"), HasSubstr("flatten")));
}

TEST(ShapeErrors, ConvAfterDenseWithoutFlatten) {
  NeuralNetwork net = net_of({{{"type", "dense"}, {"name", "fc"}, {"n_out", 8}},
                              {{"type", "conv2d"}, {"name", "conv_after_dense"}, {"n_out", 4}, {"kernel", 3}}});
  const std::string msg = error_of([&] { net.forward(ones({2, 6}), Mode::Train); });
  EXPECT_THAT(msg, AllOf(HasSubstr("conv_after_dense"), HasSubstr("conv2d"), HasSubstr("(2, 8)")));
  // build() reports the same before any data flows.
  NeuralNetwork net2 = net_of({{{"type", "dense"}, {"name", "fc"}, {"n_out", 8}},
                               {{"type", "conv2d"}, {"name", "conv_after_dense"}, {"n_out", 4}, {"kernel", 3}}});
  EXPECT_THAT(error_of([&] { net2.build(Shape{2, 6}, cpu()); }),
              AllOf(HasSubstr("conv_after_dense"), HasSubstr("(2, 8)")));
}

TEST(ShapeErrors, ConvBuiltForThreeChannelsFedOne) {
  Conv2D conv("conv1", 4, 3, 3);
  conv.forward(ones({1, 5, 5, 3}), true);
  EXPECT_THAT(error_of([&] { conv.forward(ones({1, 5, 5, 1}), true); }),
              AllOf(HasSubstr("conv1"), HasSubstr("3"), HasSubstr("(1, 5, 5, 1)")));
}

TEST(ShapeErrors, WrongLabelShapeForTheLoss) {
  NeuralNetwork net = net_of({{{"type", "dense"}, {"name", "out"}, {"n_out", 3}, {"activation", "softmax"}}});
  Tensor out = net.forward(ones({4, 2}), Mode::Train);
  // Fused path (softmax + cross-entropy).
  EXPECT_THAT(error_of([&] { net.backward(zeros({4, 2}), out); }),
              AllOf(HasSubstr("cross_entropy"), HasSubstr("(4, 2)"), HasSubstr("(4, 3)")));
  EXPECT_THAT(error_of([&] { net.predict(ones({4, 2}), zeros({5, 3})); }),
              AllOf(HasSubstr("(5, 3)"), HasSubstr("(4, 3)")));
  // Plain losses.
  CrossEntropy ce;
  L2 l2;
  EXPECT_THAT(error_of([&] { ce.forward(ones({4, 3}), ones({4})); }), AllOf(HasSubstr("cross_entropy"), HasSubstr("(4)")));
  EXPECT_THAT(error_of([&] { l2.backward(ones({4, 3}), ones({3, 4})); }),
              AllOf(HasSubstr("l2"), HasSubstr("(3, 4)"), HasSubstr("(4, 3)")));
}

TEST(ShapeErrors, EmptyBatch) {
  FullyConnected fc("fc_empty", 3);
  EXPECT_THAT(error_of([&] { fc.forward(zeros({0, 4}), true); }),
              AllOf(HasSubstr("fc_empty"), HasSubstr("empty"), HasSubstr("(0, 4)")));
  Conv2D conv("conv_empty", 2, 3, 3);
  EXPECT_THAT(error_of([&] { conv.forward(zeros({0, 5, 5, 1}), true); }),
              AllOf(HasSubstr("conv_empty"), HasSubstr("(0, 5, 5, 1)")));
  NeuralNetwork net = net_of({{{"type", "dense"}, {"n_out", 3}}});
  EXPECT_THAT(error_of([&] { net.forward(zeros({0, 4}), Mode::Train); }), AllOf(HasSubstr("empty"), HasSubstr("(0, 4)")));
  CrossEntropy ce;
  EXPECT_THAT(error_of([&] { ce.forward(zeros({0, 3}), zeros({0, 3})); }), HasSubstr("(0, 3)"));
}

// Building for an empty batch must not crash (Flatten once divided by the
// batch size: SIGFPE); the first forward then reports the empty batch.
TEST(ShapeErrors, BuildForAnEmptyBatchDoesNotCrash) {
  Flatten f("flat0");
  EXPECT_EQ(f.output_shape(Shape{0, 2, 3, 1}), Shape({0, 6}));
  NeuralNetwork net = net_of({{{"type", "flatten"}, {"name", "flat"}}, {{"type", "dense"}, {"name", "fc"}, {"n_out", 2}}});
  net.build(Shape{0, 2, 3, 1}, cpu());
  EXPECT_THAT(error_of([&] { net.forward(zeros({0, 2, 3, 1}), Mode::Train); }), HasSubstr("(0, 2, 3, 1)"));
}

TEST(ShapeErrors, InputWithoutBatchAxis) {
  FullyConnected fc("fc_rank1", 3);
  EXPECT_THAT(error_of([&] { fc.forward(ones({4}), true); }), AllOf(HasSubstr("fc_rank1"), HasSubstr("(4)")));
}

TEST(ShapeErrors, KernelLargerThanPaddedInput) {
  Conv2D conv("big_kernel", 2, 5, 5, ActivationKind::Linear, 1, Padding{Padding::Mode::Valid});
  EXPECT_THAT(error_of([&] { conv.forward(ones({1, 3, 4, 1}), true); }),
              AllOf(HasSubstr("big_kernel"), HasSubstr("(5, 5)"), HasSubstr("(3, 4)"), HasSubstr("(1, 3, 4, 1)")));
  // With padding 1 the padded input is (5, 6): a 7x3 kernel still does not fit.
  Conv2D conv2("tall_kernel", 2, 7, 3, ActivationKind::Linear, 1, Padding{Padding::Mode::Explicit, 1, 1});
  EXPECT_THAT(error_of([&] { conv2.forward(ones({1, 3, 4, 1}), true); }),
              AllOf(HasSubstr("tall_kernel"), HasSubstr("(7, 3)"), HasSubstr("(5, 6)")));
}

TEST(ShapeErrors, PoolingThatLeavesNoOutput) {
  Pool2D pool("pool_too_big", PoolMode::Max, 4, 4, 2);
  EXPECT_THAT(error_of([&] { pool.forward(ones({2, 3, 3, 8}), true); }),
              AllOf(HasSubstr("pool_too_big"), HasSubstr("(4, 4)"), HasSubstr("(3, 3)"), HasSubstr("(2, 3, 3, 8)")));
  // In a network, after a conv has shrunk the image.
  NeuralNetwork net = net_of({{{"type", "conv2d"}, {"name", "c"}, {"n_out", 2}, {"kernel", 3}, {"pad", "valid"}},
                              {{"type", "maxpool2d"}, {"name", "p"}, {"kernel", 3}},
                              {{"type", "maxpool2d"}, {"name", "p2"}, {"kernel", 2}}});
  EXPECT_THAT(error_of([&] { net.forward(ones({1, 5, 5, 1}), Mode::Train); }),
              AllOf(HasSubstr("p2"), HasSubstr("(1, 1, 1, 2)")));
}

TEST(ShapeErrors, PoolPaddingAsLargeAsTheWindow) {
  Pool2D pool("pool_pad", PoolMode::Average, 2, 2, 1, Padding{Padding::Mode::Explicit, 2, 2});
  EXPECT_THAT(error_of([&] { pool.forward(ones({1, 4, 4, 1}), true); }),
              AllOf(HasSubstr("pool_pad"), HasSubstr("(2, 2)")));
}

TEST(ShapeErrors, BackwardGradientOfTheWrongShape) {
  FullyConnected fc("fc_grad", 3);
  fc.forward(ones({2, 4}), true);
  EXPECT_THAT(error_of([&] { fc.backward(ones({2, 4})); }),
              AllOf(HasSubstr("fc_grad"), HasSubstr("(2, 4)"), HasSubstr("(2, 3)")));
  BatchNorm bn("bn_grad");
  bn.forward(ones({3, 5}), true);
  EXPECT_THAT(error_of([&] { bn.backward(ones({3, 4})); }),
              AllOf(HasSubstr("bn_grad"), HasSubstr("(3, 4)"), HasSubstr("(3, 5)")));
}

TEST(ShapeErrors, BackwardGradientOfTheWrongShapeThroughAnActivation) {
  Conv2D conv("conv_grad", 2, 3, 3, ActivationKind::ReLU);
  conv.forward(ones({1, 4, 4, 1}), true);
  EXPECT_THAT(error_of([&] { conv.backward(ones({1, 4, 4, 3})); }),
              AllOf(HasSubstr("conv_grad"), HasSubstr("(1, 4, 4, 3)"), HasSubstr("(1, 4, 4, 2)")));
  ActivationLayer act("act_grad", ActivationKind::TanH);
  act.forward(ones({2, 3}), true);
  EXPECT_THAT(error_of([&] { act.backward(ones({3, 2})); }),
              AllOf(HasSubstr("act_grad"), HasSubstr("(3, 2)"), HasSubstr("(2, 3)")));
}

TEST(ShapeErrors, BackwardBeforeForward) {
  FullyConnected fc("fc_nofwd", 2, ActivationKind::Sigmoid);
  EXPECT_THAT(error_of([&] { fc.backward(ones({1, 2})); }), HasSubstr("fc_nofwd"));
  ActivationLayer act("act_nofwd", ActivationKind::ReLU);
  EXPECT_THAT(error_of([&] { act.backward(ones({1, 2})); }), HasSubstr("act_nofwd"));
  Conv2D conv("conv_nofwd", 2, 3, 3);
  EXPECT_THAT(error_of([&] { conv.backward(ones({1, 3, 3, 2})); }), HasSubstr("conv_nofwd"));
  BatchNorm bn("bn_nofwd");
  EXPECT_THAT(error_of([&] { bn.backward(ones({2, 3})); }), HasSubstr("bn_nofwd"));
}

// ---- configs ------------------------------------------------------------------------

TEST(ConfigErrors, UnknownActivationInMakeLayer) {
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "dense"}, {"name", "fc_bad_act"}, {"n_out", 3}, {"activation", "relux"}}, 0);
              }),
              AllOf(HasSubstr("fc_bad_act"), HasSubstr("relux"), HasSubstr("relu")));
  // The message lists every name of the activation table.
  EXPECT_THAT(error_of([] { make_layer({{"type", "conv2d"}, {"n_out", 3}, {"kernel", 3}, {"activation", "mish"}}, 4); }),
              AllOf(HasSubstr("conv2d_4"), HasSubstr("mish"), HasSubstr("gelu"), HasSubstr("leaky_relu")));
}

TEST(ConfigErrors, NegativeSlope) {
  // Only leaky_relu takes one, and it must be a finite number.
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "dense"}, {"name", "fc1"}, {"n_out", 3}, {"activation", "relu"},
                            {"negative_slope", 0.1}}, 0);
              }),
              AllOf(HasSubstr("fc1"), HasSubstr("negative_slope"), HasSubstr("relu")));
  EXPECT_THAT(error_of([] { make_layer({{"type", "leaky_relu"}, {"name", "act2"}, {"negative_slope", "0.1"}}, 0); }),
              AllOf(HasSubstr("act2"), HasSubstr("negative_slope")));
  EXPECT_THAT(error_of([] { make_layer({{"type", "activation"}, {"name", "act3"}}, 0); }),
              AllOf(HasSubstr("act3"), HasSubstr("activation")));
}

// The config a layer writes builds the same layer again (the checkpoint
// stores it): the slope and "bias": false survive.
TEST(ConfigRoundTrip, ActivationSlopeAndBias) {
  const nlohmann::json configs[] = {
      {{"type", "fully_connected"}, {"name", "fc"}, {"n_out", 3}, {"activation", "leaky_relu"},
       {"negative_slope", 0.25}, {"init", "xavier_uniform"}, {"bias", false}},
      {{"type", "activation"}, {"name", "a"}, {"activation", "gelu"}},
      {{"type", "conv2d"}, {"name", "c"}, {"n_out", 2}, {"kernel", {3, 3}}, {"stride", 1}, {"pad", "same"},
       {"activation", "silu"}, {"init", "xavier_uniform"}, {"bias", true}},
      {{"type", "conv2d"}, {"name", "dw"}, {"n_out", 4}, {"kernel", 3}, {"activation", "relu"}, {"groups", 2}}};
  for (const nlohmann::json& cfg : configs) {
    const nlohmann::json written = make_layer(cfg, 0)->config();
    EXPECT_EQ(make_layer(written, 0)->config(), written) << written.dump();
    EXPECT_EQ(written.at("activation"), cfg.at("activation")) << written.dump();
  }
  const nlohmann::json fc = make_layer(configs[0], 0)->config();
  EXPECT_EQ(fc.at("negative_slope").get<double>(), 0.25);
  EXPECT_EQ(fc.at("bias").get<bool>(), false);
  EXPECT_EQ(make_layer(configs[3], 0)->config().at("groups").get<int>(), 2);
  // An ungrouped conv2d writes no "groups" key (configs stored before it existed stay unchanged).
  EXPECT_FALSE(make_layer(configs[2], 0)->config().contains("groups"));
  // A fully_connected layer with a bias writes no "bias" key (configs stored
  // before the option existed stay unchanged).
  EXPECT_FALSE(make_layer({{"type", "dense"}, {"n_out", 2}}, 0)->config().contains("bias"));
}

TEST(ConfigErrors, UnknownActivationInFromConfig) {
  EXPECT_THAT(error_of([] {
                net_of({{{"type", "dense"}, {"n_out", 3}},
                        {{"type", "activation"}, {"name", "act1"}, {"activation", "swish"}}});
              }),
              AllOf(HasSubstr("act1"), HasSubstr("swish")));
}

TEST(ConfigErrors, UnknownLayerType) {
  EXPECT_THAT(error_of([] { net_of({{{"type", "dense"}, {"n_out", 3}}, {{"type", "lstm"}, {"n_out", 3}}}); }),
              AllOf(HasSubstr("layer 1"), HasSubstr("lstm")));
  EXPECT_THAT(error_of([] { make_layer({{"n_out", 3}}, 2); }), AllOf(HasSubstr("layer 2"), HasSubstr("type")));
}

TEST(ConfigErrors, UnknownConfigKey) {
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "conv2d"}, {"name", "conv_typo"}, {"n_out", 3}, {"kernal", 3}, {"kernel", 3}}, 0);
              }),
              AllOf(HasSubstr("conv_typo"), HasSubstr("kernal")));
  EXPECT_THAT(error_of([] { NeuralNetwork::from_config({{"layers", {{{"type", "flatten"}}}}, {"optimiser", "sgd"}}); }),
              HasSubstr("optimiser"));
  EXPECT_THAT(error_of([] { make_scheduler({{"type", "cosine"}, {"lr", 0.1}, {"total_steps", 10}, {"warmup", 2}}); }),
              HasSubstr("warmup"));
  EXPECT_THAT(error_of([] { make_optimizer({{"type", "sgd"}, {"momentun", 0.9}}); }), HasSubstr("momentun"));
}

TEST(ConfigErrors, BadValues) {
  EXPECT_THAT(error_of([] { make_layer({{"type", "dense"}, {"name", "fc_neg"}, {"n_out", -3}}, 0); }),
              AllOf(HasSubstr("fc_neg"), HasSubstr("n_out"), HasSubstr("-3")));
  EXPECT_THAT(error_of([] { make_layer({{"type", "conv2d"}, {"name", "cpad"}, {"n_out", 2}, {"kernel", 3}, {"pad", "full"}}, 0); }),
              AllOf(HasSubstr("cpad"), HasSubstr("full")));
  EXPECT_THAT(error_of([] { make_layer({{"type", "dense"}, {"name", "fc_init"}, {"n_out", 2}, {"init", "lecun"}}, 0); }),
              AllOf(HasSubstr("fc_init"), HasSubstr("lecun")));
  EXPECT_THAT(error_of([] { make_layer({{"type", "dropout"}, {"name", "drop"}, {"p", 1.5}}, 0); }),
              AllOf(HasSubstr("drop"), HasSubstr("1.5")));
  EXPECT_THAT(error_of([] { make_loss("hinge"); }), HasSubstr("hinge"));
  EXPECT_THAT(error_of([] { make_scheduler({{"type", "linear"}}); }), HasSubstr("linear"));
  EXPECT_THAT(error_of([] { make_optimizer({{"type", "rmsprop"}}); }), HasSubstr("rmsprop"));
  EXPECT_THAT(error_of([] { net_of({{{"type", "dense"}, {"name", "same"}, {"n_out", 2}},
                                    {{"type", "dense"}, {"name", "same"}, {"n_out", 2}}}); }),
              HasSubstr("same"));
}

// conv2d's "groups" must divide both channel counts (ConvGeometry): refused
// when the config is read (n_out = F) or when the input arrives (C), naming
// the layer, the field and the shapes; and by every device for a caller that
// bypasses the layer.
TEST(ConfigErrors, ConvGroupsMustDivideBothChannelCounts) {
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "conv2d"}, {"name", "dw_f"}, {"n_out", 5}, {"kernel", 3}, {"groups", 2}}, 0);
              }),
              AllOf(HasSubstr("dw_f"), HasSubstr("'groups' = 2"), HasSubstr("n_out = 5")));
  EXPECT_THAT(error_of([] {
                net_of({{{"type", "conv2d"}, {"name", "dw_c"}, {"n_out", 4}, {"kernel", 3}, {"groups", 2}},
                        {{"type", "flatten"}}})
                    .build(Shape{2, 6, 6, 3}, cpu());
              }),
              AllOf(HasSubstr("dw_c"), HasSubstr("'groups' = 2"), HasSubstr("C = 3"), HasSubstr("(2, 6, 6, 3)"),
                    HasSubstr("C is not a multiple")));
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "conv2d"}, {"name", "g0"}, {"n_out", 4}, {"kernel", 3}, {"groups", 0}}, 0);
              }),
              AllOf(HasSubstr("g0"), HasSubstr("'groups' must be at least 1")));
  EXPECT_THAT(error_of([] {
                make_layer({{"type", "conv2d"}, {"name", "g_half"}, {"n_out", 4}, {"kernel", 3}, {"groups", 1.5}}, 0);
              }),
              AllOf(HasSubstr("g_half"), HasSubstr("groups"), HasSubstr("integer")));
  ConvGeometry g;
  g.N = 1, g.H = g.W = 4, g.C = 3, g.KH = g.KW = 1, g.F = 4, g.OH = g.OW = 4, g.groups = 2;
  const Tensor x = zeros({1, 4, 4, 3}), w = zeros({1, 1, 1, 4});
  Tensor y = zeros({1, 4, 4, 4});
  for (Device* d : {&cpu_device(), &reference_cpu_device()}) {
    const Tensor xd = x.to(*d), wd = w.to(*d);
    Tensor yd = y.to(*d);
    EXPECT_THAT(error_of([&] { d->conv2d_forward(g, xd, wd, Tensor(), yd); }),
                AllOf(HasSubstr("conv2d_forward"), HasSubstr("'groups' = 2"), HasSubstr("C = 3")));
  }
}

// ---- devices -------------------------------------------------------------------------

TEST(DeviceErrors, BadDeviceNames) {
  if (!cuda_built() || cuda_device_count() < 8) {
    EXPECT_THAT(error_of([] { get_device("cuda:7"); }), HasSubstr("cuda:7"));
  }
  EXPECT_THAT(error_of([] { get_device("gpu"); }), AllOf(HasSubstr("gpu"), HasSubstr("cpu")));
  EXPECT_THAT(error_of([] { get_device("cuda:x"); }), HasSubstr("cuda:x"));
  EXPECT_THAT(error_of([] { get_device(""); }), HasSubstr("unknown device"));
  if (!cuda_built()) {
    EXPECT_THAT(error_of([] { get_device("cuda"); }), HasSubstr("cuda"));
  }
  EXPECT_EQ(&get_device("cpu"), &cpu_device());
}

// ---- checkpoints ------------------------------------------------------------------------

class CheckpointErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "janus_test_errors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".safetensors";
    NeuralNetwork net = net_of({{{"type", "dense"}, {"name", "fc"}, {"n_out", 5}, {"activation", "tanh"}},
                                {{"type", "dense"}, {"name", "out"}, {"n_out", 3}, {"activation", "softmax"}}});
    net.forward(ones({2, 4}), Mode::Train);
    save_checkpoint(path_, net, nullptr);
    std::ifstream in(path_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes_.size(), 100u);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  uint64_t header_length() const {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes_[static_cast<size_t>(i)]);
    return n;
  }
  std::string path_, bytes_;
};

TEST_F(CheckpointErrors, IntactFileLoads) {
  EXPECT_NO_THROW(read_safetensors(path_));
  EXPECT_NO_THROW(load_model(path_, cpu()));
}

TEST_F(CheckpointErrors, MissingFile) {
  const std::string missing = path_ + ".missing";
  EXPECT_THAT(error_of([&] { read_safetensors(missing); }), HasSubstr(missing));
  EXPECT_THAT(error_of([&] { load_model(missing, cpu()); }), HasSubstr(missing));
}

TEST_F(CheckpointErrors, TruncatedFile) {
  // Cut inside the data section, inside the header, and inside the length.
  for (size_t keep : {bytes_.size() - 1, bytes_.size() - 17, static_cast<size_t>(8 + header_length() / 2),
                      static_cast<size_t>(5), static_cast<size_t>(0)}) {
    write(bytes_.substr(0, keep));
    EXPECT_THAT(error_of([&] { read_safetensors(path_); }), HasSubstr(path_)) << "kept " << keep << " bytes";
    EXPECT_THAT(error_of([&] { load_model(path_, cpu()); }), HasSubstr(path_)) << "kept " << keep << " bytes";
  }
  write(bytes_.substr(0, bytes_.size() - 4));
  EXPECT_THAT(error_of([&] { read_safetensors(path_); }), AllOf(HasSubstr(path_), HasSubstr("truncated")));
}

TEST_F(CheckpointErrors, BitFlippedData) {
  // Every single-bit flip in a sample of data bytes is detected (CRC32).
  const size_t data_begin = 8 + header_length();
  for (size_t pos = data_begin; pos < bytes_.size(); pos += 7) {
    for (int bit : {0, 6}) {
      std::string b = bytes_;
      b[pos] = static_cast<char>(b[pos] ^ (1 << bit));
      write(b);
      EXPECT_THAT(error_of([&] { read_safetensors(path_); }), AllOf(HasSubstr(path_), HasSubstr("corrupt")))
          << "flip of bit " << bit << " at byte " << pos;
    }
  }
}

TEST_F(CheckpointErrors, BitFlippedHeader) {
  // A flipped bit in the header length or in the JSON structure.
  std::string b = bytes_;
  b[3] = static_cast<char>(b[3] ^ 0x10);  // header length becomes huge
  write(b);
  EXPECT_THAT(error_of([&] { read_safetensors(path_); }), HasSubstr(path_));
  b = bytes_;
  b[8] = static_cast<char>(b[8] ^ 0x01);  // '{' -> 'z'
  write(b);
  EXPECT_THAT(error_of([&] { read_safetensors(path_); }), HasSubstr(path_));
  // A data offset altered: "data_offsets":[0,20] -> [0,21]-style damage.
  b = bytes_;
  const size_t at = b.find("data_offsets");
  ASSERT_NE(at, std::string::npos);
  const size_t digit = b.find_first_of("123456789", at + 16);
  ASSERT_NE(digit, std::string::npos);
  b[digit] = b[digit] == '9' ? '8' : static_cast<char>(b[digit] + 1);
  write(b);
  EXPECT_THAT(error_of([&] { read_safetensors(path_); }), HasSubstr(path_));
}

TEST_F(CheckpointErrors, CheckpointForAnotherModel) {
  NeuralNetwork other = net_of({{{"type", "dense"}, {"name", "fc"}, {"n_out", 6}, {"activation", "tanh"}},
                                {{"type", "dense"}, {"name", "out"}, {"n_out", 3}, {"activation", "softmax"}}});
  other.build(Shape{1, 4}, cpu());
  EXPECT_THAT(error_of([&] { load_checkpoint_into(path_, other, nullptr); }),
              AllOf(HasSubstr(path_), HasSubstr("fc.W"), HasSubstr("(4, 5)"), HasSubstr("(4, 6)")));
  // No optimizer state in the file.
  NeuralNetwork same = load_model(path_, cpu());
  SGD opt(0.9);
  EXPECT_THAT(error_of([&] { load_checkpoint_into(path_, same, &opt); }), AllOf(HasSubstr(path_), HasSubstr("optimizer")));
}

TEST_F(CheckpointErrors, NotAJanusCheckpoint) {
  write_safetensors(path_, {{"w", Tensor::zeros({2, 2}, cpu())}}, {});
  EXPECT_NO_THROW(read_safetensors(path_));
  EXPECT_THAT(error_of([&] { load_model(path_, cpu()); }), AllOf(HasSubstr(path_), HasSubstr("model")));
}

TEST(SaveErrors, UnbuiltModelAndUnwritableDirectory) {
  NeuralNetwork net = net_of({{{"type", "dense"}, {"n_out", 3}}});
  EXPECT_THAT(error_of([&] { save_checkpoint(::testing::TempDir() + "never.safetensors", net, nullptr); }),
              HasSubstr("built"));
  net.build(Shape{1, 2}, cpu());
  const std::string bad = "/nonexistent_dir_janus/ckpt.safetensors";
  EXPECT_THAT(error_of([&] { save_checkpoint(bad, net, nullptr); }), HasSubstr("/nonexistent_dir_janus/"));
}

// ---- issue 12: hostile inputs, round two ------------------------------------

// cross_entropy on a model without a final softmax reads its output as
// logits (PyTorch's CrossEntropyLoss): the loss and every gradient equal
// those of the same model ending in softmax, bit for bit (one fused kernel),
// and the loss is never negative, however large the outputs.
TEST(CrossEntropyOnLogits, EqualsTheSoftmaxModelAndIsNeverNegative) {
  auto net_with = [](bool softmax) {
    nlohmann::json last = {{"type", "fully_connected"}, {"n_out", 3}};
    if (softmax) last["activation"] = "softmax";
    return NeuralNetwork::from_config({{"layers", {{{"type", "fully_connected"}, {"n_out", 5}, {"activation", "tanh"}}, last}},
                                       {"loss", "cross_entropy"},
                                       {"seed", 3}});
  };
  NeuralNetwork probs = net_with(true), logits = net_with(false);
  std::vector<float> x(8 * 4), y(8 * 3, 0.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 40.0f * std::sin(0.7f * static_cast<float>(i));  // large logits
  for (size_t r = 0; r < 8; ++r) y[r * 3 + r % 3] = 1.0f;
  const Tensor X = Tensor::from_host(x, Shape{8, 4}, cpu()), Y = Tensor::from_host(y, Shape{8, 3}, cpu());
  const double lp = probs.backward(Y, probs.forward(X, Mode::Train));
  const double ll = logits.backward(Y, logits.forward(X, Mode::Train));
  EXPECT_GE(ll, 0.0);
  EXPECT_EQ(lp, ll);
  auto gp = probs.named_parameters(), gl = logits.named_parameters();
  ASSERT_EQ(gp.size(), gl.size());
  for (size_t i = 0; i < gp.size(); ++i)
    EXPECT_EQ(gp[i].parameter->grad.to_host(), gl[i].parameter->grad.to_host()) << gp[i].name;
  EXPECT_EQ(probs.predict(X, Y).second, logits.predict(X, Y).second);
}

// Optimizer and schedule fields outside their domains name the field, the value and the domain.
TEST(ConfigDomains, NameFieldValueAndDomain) {
  EXPECT_THAT(error_of([] { make_optimizer({{"type", "adam"}, {"beta2", 1.5}}); }),
              HasSubstr("optimizer adam: 'beta2' is 1.5, outside its domain [0, 1)"));
  EXPECT_THAT(error_of([] { make_optimizer({{"type", "sgd"}, {"weight_decay", -5}}); }),
              HasSubstr("'weight_decay' is -5, outside its domain [0, inf)"));
  EXPECT_THAT(error_of([] { make_scheduler({{"type", "cosine"}, {"lr", 0.1}, {"total_steps", 10}, {"min_lr", -2}}); }),
              HasSubstr("'min_lr' is -2, outside its domain [0, 0.1]"));
  EXPECT_THAT(error_of([] { make_scheduler({{"type", "onecycle"}, {"lr", 0.1}, {"total_steps", 10}, {"div_factor", 0}}); }),
              HasSubstr("'div_factor' is 0, outside its domain (0, inf)"));
  EXPECT_THAT(error_of([] { make_scheduler({{"type", "step"}, {"lr", 0.1}, {"step_size", 1e30}}); }),
              HasSubstr("'step_size' is 1e+30, outside its domain integers >= 1"));
  // the boundaries that are inside
  EXPECT_NO_THROW(make_scheduler({{"type", "cosine"}, {"lr", 0.1}, {"total_steps", 10}, {"min_lr", 0.1}}));
  EXPECT_NO_THROW(make_optimizer({{"type", "adam"}, {"beta1", 0.0}, {"weight_decay", 0}}));
}

// A float64 checkpoint value beyond float32's range is refused, naming the file, tensor and element.
TEST(CheckpointDtypes, Float64BeyondFloat32IsRefused) {
  NeuralNetwork net = NeuralNetwork::from_config(
      {{"layers", {{{"type", "fully_connected"}, {"n_out", 2}, {"activation", "softmax"}}}}, {"loss", "cross_entropy"}});
  net.build(Shape{1, 3}, cpu());
  char tmpl[] = "/tmp/janus-f64-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const std::string path = tmpl;
  std::vector<NamedTensor> tensors;
  for (auto& [name, t] : net.state()) {
    Tensor d = t->to(DType::F64);
    if (tensors.empty()) {
      std::vector<double> v = d.to_host();
      v[1] = 1e300;
      d = Tensor::from_host(v, d.shape(), cpu(), DType::F64);
    }
    tensors.push_back({name, d});
  }
  write_safetensors(path, tensors,
                    {{"model", net.config().dump()}, {"input_shape", nlohmann::json(net.input_shape().dims()).dump()}});
  EXPECT_THAT(error_of([&] { load_model(path, cpu()); }),
              AllOf(HasSubstr(path), HasSubstr("element 1 is 1e+300, out of float32 range")));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace janus
