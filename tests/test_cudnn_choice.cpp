// The cuDNN algorithm choice as pure logic (src/cuda/conv_algo_choice.hpp):
// cuDNN itself runs only on a real GPU, so its ranked lists are played here
// by hand-made candidates, including the awkward cases a first GPU run may
// meet (math-type mismatch, NOT_SUPPORTED at run time, no workspace).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/conv_algo_choice.hpp"

using namespace janus::cuda;

namespace {

AlgoCandidate cand(int algo, const std::string& name, bool ok = true, bool math = true, size_t ws = 0,
                   bool det = true, bool transform = false) {
  AlgoCandidate c;
  c.algo = algo, c.name = name, c.status_ok = ok, c.math_matches = math, c.workspace = ws;
  c.deterministic = det, c.transform = transform;
  return c;
}

std::vector<std::string> names(const AlgoRanking& r) {
  std::vector<std::string> out;
  for (const AlgoCandidate& c : r.order) out.push_back(c.name);
  return out;
}

bool mentions(const std::vector<std::string>& notes, const std::string& name, const std::string& why) {
  for (const std::string& n : notes)
    if (n.rfind(name + ":", 0) == 0 && n.find(why) != std::string::npos) return true;
  return false;
}

TEST(CudnnChoice, FiltersStatusMathWorkspaceAndTransforms) {
  const std::vector<AlgoCandidate> ranked = {
      cand(6, "WINOGRAD", true, true, 0, true, true),      // fastest, but a transform
      cand(1, "PRECOMP_TF32", true, false),                // ranked for DEFAULT math (TF32)
      cand(4, "FFT", true, true, 100, true, true),
      cand(2, "GEMM", true, true, 2000),                   // over the workspace limit
      cand(3, "DIRECT", false),                            // not available
      cand(0, "IMPLICIT_GEMM", true, true, 10),
  };
  const AlgoRanking r = rank_algorithms(ranked, 1000, false, false);
  EXPECT_EQ(names(r), std::vector<std::string>{"IMPLICIT_GEMM"});
  EXPECT_TRUE(mentions(r.rejected, "WINOGRAD", "transform"));
  EXPECT_TRUE(mentions(r.rejected, "FFT", "transform"));
  EXPECT_TRUE(mentions(r.rejected, "PRECOMP_TF32", "math type"));
  EXPECT_TRUE(mentions(r.rejected, "GEMM", "workspace"));
  EXPECT_TRUE(mentions(r.rejected, "DIRECT", "not available"));
  // Asked for: transforms keep cuDNN's order.
  const AlgoRanking t = rank_algorithms(ranked, 1000, false, true);
  EXPECT_EQ(names(t), (std::vector<std::string>{"WINOGRAD", "FFT", "IMPLICIT_GEMM"}));
}

TEST(CudnnChoice, DeterministicFirstThenTheRestInCudnnOrder) {
  const std::vector<AlgoCandidate> ranked = {cand(0, "ALGO_0", true, true, 0, false), cand(1, "ALGO_1"),
                                             cand(3, "ALGO_3", true, true, 0, false)};
  EXPECT_EQ(names(rank_algorithms(ranked, 1000, true, false)),
            (std::vector<std::string>{"ALGO_1", "ALGO_0", "ALGO_3"}));
  EXPECT_EQ(names(rank_algorithms(ranked, 1000, false, false)),
            (std::vector<std::string>{"ALGO_0", "ALGO_1", "ALGO_3"}));
}

TEST(CudnnChoice, WalksDownTheListOnRunFailures) {
  const AlgoRanking r = rank_algorithms({cand(1, "A"), cand(2, "B"), cand(3, "C")}, 1000, false, false);
  std::vector<std::string> tried, failures;
  const int got = run_first_working(r, 0, [&](const AlgoCandidate& c) {
    tried.push_back(c.name);
    if (c.name == "A") return AlgoRun::NotSupported;
    if (c.name == "B") return AlgoRun::NoWorkspace;
    return AlgoRun::Ok;
  }, failures);
  EXPECT_EQ(got, 2);
  EXPECT_EQ(tried, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_TRUE(mentions(failures, "A", "NOT_SUPPORTED"));
  EXPECT_TRUE(mentions(failures, "B", "workspace"));
  // The next call starts at the remembered choice: A and B are not retried.
  tried.clear();
  EXPECT_EQ(run_first_working(r, static_cast<size_t>(got), [&](const AlgoCandidate& c) {
    tried.push_back(c.name);
    return AlgoRun::Ok;
  }, failures), 2);
  EXPECT_EQ(tried, std::vector<std::string>{"C"});
}

TEST(CudnnChoice, EveryFailureMeansImplicitGemm) {
  const AlgoRanking r = rank_algorithms({cand(1, "A"), cand(2, "B")}, 1000, false, false);
  std::vector<std::string> failures;
  EXPECT_EQ(run_first_working(r, 0, [](const AlgoCandidate&) { return AlgoRun::NotSupported; }, failures), -1);
  EXPECT_EQ(failures.size(), 2u);
  // Nothing acceptable at all: an empty order (the caller uses implicit GEMM without trying).
  EXPECT_TRUE(rank_algorithms({cand(1, "A", false), cand(2, "B", true, false)}, 1000, false, false).order.empty());
}

}  // namespace
