// ThreadPool implementation: generation counter + short spin, then a condition variable.
#include "core/thread_pool.h"

#include <chrono>

#include "core/status.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BRICK_CPU_RELAX() _mm_pause()
#else
#define BRICK_CPU_RELAX() std::this_thread::yield()
#endif

namespace brickrt {
namespace {
// Spin this long before sleeping. Decode issues a parallel loop every few microseconds, so a short
// spin saves a futex wake per call; on an idle pool the workers sleep.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  n_threads_ = n_threads < 1 ? 1 : n_threads;
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::DrainTasks(int thread) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) return;
    fn_(ctx_, task, thread);
  }
}

void ThreadPool::Run(int64_t n_tasks, TaskFn fn, void* ctx) {
  if (n_tasks <= 0) return;
  // One job at a time: a second caller would overwrite fn_/ctx_ under the workers.
  BRICK_ASSERT(!busy_.exchange(true), "ThreadPool::ParallelFor called concurrently or re-entrantly");
  struct Release {
    std::atomic<bool>& b;
    ~Release() { b.store(false); }
  } release{busy_};
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(ctx, t, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  pending_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  DrainTasks(0);
  while (pending_workers_.load(std::memory_order_acquire) != 0) BRICK_CPU_RELAX();
}

void ThreadPool::WorkerLoop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until) {
      for (int i = 0; i < 64; ++i) BRICK_CPU_RELAX();
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    DrainTasks(thread);
    pending_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace brickrt
