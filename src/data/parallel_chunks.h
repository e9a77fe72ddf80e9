// ParallelChunks: runs fn(0..n) on the calling thread plus helper threads that claim chunks
// from a shared counter. Unlike an OpenMP region, the caller never waits for a helper that
// has not started: on a busy machine, a helper that is not scheduled in time simply does no
// chunks, and the caller does them all. It waits only for chunks a helper is in the middle of.
//
// Used for parsing big batches of text rows, which dwarfs the cost of a wake-up.
//
// Thread safety: Run may be called from one thread at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth::data {

class ParallelChunks {
 public:
  // `helpers` extra threads, started now.
  explicit ParallelChunks(int helpers);
  ~ParallelChunks();
  ParallelChunks(const ParallelChunks&) = delete;
  ParallelChunks& operator=(const ParallelChunks&) = delete;

  // Calls fn(i) once for every i in [0, n), on whichever threads claim them; returns when all
  // calls have returned.
  void Run(std::size_t n, const std::function<void(std::size_t)>& fn);

  // Helper threads worth starting on this machine (cores - 1, at most 7).
  static int DefaultHelpers();

 private:
  void HelperLoop();
  void Claim(const std::function<void(std::size_t)>& fn, std::size_t n);

  std::mutex mu_;
  std::condition_variable work_;  // a new job, or stop
  std::condition_variable idle_;  // a helper left a job
  const std::function<void(std::size_t)>* job_ = nullptr;  // guarded by mu_
  std::size_t job_size_ = 0;                               // guarded by mu_
  std::uint64_t generation_ = 0;                           // guarded by mu_
  int active_helpers_ = 0;                                 // guarded by mu_
  bool stop_ = false;                                      // guarded by mu_
  std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> done_{0};
  std::vector<std::thread> threads_;
};

}  // namespace hearth::data
