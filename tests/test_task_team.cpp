// TaskTeam (src/cpu/task_team.hpp), the thread team of the fast CPU device's
// dense-layer operations: every index runs exactly once, whoever runs it;
// runs issued concurrently, from inside a task, or after the helpers went to
// sleep complete; tasks see omp_get_max_threads() == 1.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cpu/task_team.hpp"

namespace janus::fast {
namespace {

// Runs `count` tasks on the team and checks each index ran exactly once.
void expect_each_index_once(TaskTeam& team, int64_t count) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
  for (auto& h : hits) h.store(0);
  team.run(count, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i << " of " << count;
}

TEST(TaskTeam, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    TaskTeam team(threads);
    EXPECT_EQ(team.threads(), threads);
    for (int64_t count : {0, 1, 2, 3, 7, 64, 1000})
      for (int repeat = 0; repeat < 20; ++repeat) expect_each_index_once(team, count);
  }
}

TEST(TaskTeam, HelpersDoShareTheWork) {
  // With tasks long enough for a helper to join, some run off the caller.
  TaskTeam team(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0};
  for (int attempt = 0; attempt < 200 && elsewhere.load() == 0; ++attempt)
    team.run(8, [&](int64_t) {
      if (std::this_thread::get_id() != caller) elsewhere.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  EXPECT_GT(elsewhere.load(), 0) << "no task ever ran on a helper";
}

TEST(TaskTeam, WorksAfterHelpersFellAsleep) {
  TaskTeam team(2);
  expect_each_index_once(team, 16);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // well past the spin time
  for (int repeat = 0; repeat < 10; ++repeat) {
    expect_each_index_once(team, 16);
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
}

TEST(TaskTeam, NestedRunRunsOnItsCaller) {
  TaskTeam team(2);
  std::atomic<int> inner{0};
  team.run(4, [&](int64_t) {
    team.run(5, [&](int64_t) { inner.fetch_add(1); });
    team.run(1, [&](int64_t) { inner.fetch_add(1); });  // single task: the serial shortcut
    team.run(3, [&](int64_t) { inner.fetch_add(1); });  // still nested after the one above
  });
  EXPECT_EQ(inner.load(), 36);
}

TEST(TaskTeam, ConcurrentCallersTakeTurnsOrRunSerially) {
  TaskTeam team(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 200; ++r) team.run(9, [&](int64_t i) { total.fetch_add(i + 1); });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 200 * 45);
}

TEST(TaskTeam, TasksSeeOneOpenMPThread) {
  // oneDNN sizes its parallel regions from omp_get_max_threads(): inside a
  // task it must be 1, and the caller's setting must come back afterwards.
  TaskTeam team(2);
  omp_set_num_threads(2);
  std::atomic<int> max_seen{0};
  for (int repeat = 0; repeat < 20; ++repeat)
    team.run(4, [&](int64_t) {
      const int n = omp_get_max_threads();
      int seen = max_seen.load();
      while (n > seen && !max_seen.compare_exchange_weak(seen, n)) {
      }
    });
  EXPECT_EQ(max_seen.load(), 1);
  EXPECT_EQ(omp_get_max_threads(), 2);
}

}  // namespace
}  // namespace janus::fast
