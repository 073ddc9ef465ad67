// ThreadPool: a fixed set of workers that run the tasks of one parallel loop at a time. The calling
// thread takes part, so a pool of N threads starts N-1 workers. Dispatch does not allocate: hot loops
// (one call per GEMV in decode) can use it freely.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace brickrt {

class ThreadPool {
 public:
  // n_threads >= 1 (including the caller); 0 means the number of hardware threads.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks), spread over the pool, and returns when all are
  // done. `thread` is in [0, size()) and unique among concurrently running tasks (for scratch
  // buffers). Tasks must not throw. One caller at a time, not reentrant (asserted): a pool belongs to
  // one session or thread.
  template <typename Fn>
  void ParallelFor(int64_t n_tasks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    Run(n_tasks, [](void* ctx, int64_t task, int thread) { (*static_cast<F*>(ctx))(task, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using TaskFn = void (*)(void*, int64_t, int);
  void Run(int64_t n_tasks, TaskFn fn, void* ctx);
  void WorkerLoop(int thread);
  void DrainTasks(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;

  // Current job; published by bumping generation_.
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> pending_workers_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};  // a ParallelFor is running

  // Idle workers sleep here after a short spin (so back-to-back calls in decode stay cheap).
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace brickrt
