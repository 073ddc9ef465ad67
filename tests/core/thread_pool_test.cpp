// Tests for core/ThreadPool: every task runs exactly once, thread ids stay in range and are never
// shared by concurrent tasks, and the pool survives many back-to-back calls.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace brickrt {
namespace {

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 17, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.ParallelFor(n, [&](int64_t task, int) { hits[static_cast<size_t>(task)].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, ThreadIdsInRangeAndExclusive) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> busy(4);
  std::atomic<int> bad_id{0}, overlap{0};
  pool.ParallelFor(2000, [&](int64_t, int thread) {
    if (thread < 0 || thread >= 4) {
      bad_id.fetch_add(1);
      return;
    }
    // A thread id is a scratch-buffer slot: two tasks running at once must never share one.
    if (busy[static_cast<size_t>(thread)].fetch_add(1) != 0) overlap.fetch_add(1);
    volatile int spin = 0;
    for (int i = 0; i < 200; ++i) spin = spin + i;
    busy[static_cast<size_t>(thread)].fetch_sub(1);
  });
  EXPECT_EQ(bad_id.load(), 0);
  EXPECT_EQ(overlap.load(), 0);
}

TEST(ThreadPool, RepeatedCallsAccumulateExactly) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 500; ++rep) pool.ParallelFor(7, [&](int64_t task, int) { sum.fetch_add(task + 1); });
  EXPECT_EQ(sum.load(), 500 * 28);
}

TEST(ThreadPool, ZeroMeansHardwareThreads) {
  ThreadPool pool(0);
  EXPECT_GE(pool.size(), 1);
  std::atomic<int> n{0};
  pool.ParallelFor(5, [&](int64_t, int) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 5);
}

}  // namespace
}  // namespace brickrt
