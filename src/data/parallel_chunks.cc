#include "data/parallel_chunks.h"

#include <algorithm>

namespace hearth::data {

int ParallelChunks::DefaultHelpers() {
  // hardware_concurrency() reads sysfs; readers are made per inference request.
  static const int helpers =
      std::clamp(static_cast<int>(std::thread::hardware_concurrency()) - 1, 0, 7);
  return helpers;
}

ParallelChunks::ParallelChunks(int helpers) {
  for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { HelperLoop(); });
}

ParallelChunks::~ParallelChunks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ParallelChunks::Claim(const std::function<void(std::size_t)>& fn, std::size_t n) {
  while (true) {
    std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) return;
    fn(i);
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ParallelChunks::Run(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (threads_.empty() || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_size_ = n;
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  work_.notify_all();
  Claim(fn, n);
  // Every chunk is claimed; wait for the ones helpers are still running, then close the job so
  // that a helper waking late finds nothing to do.
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] {
    return active_helpers_ == 0 && done_.load(std::memory_order_acquire) == n;
  });
  job_ = nullptr;
}

void ParallelChunks::HelperLoop() {
  std::uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (job_ == nullptr) continue;  // that job finished without us
    const auto* fn = job_;
    std::size_t n = job_size_;
    ++active_helpers_;
    lock.unlock();
    Claim(*fn, n);
    lock.lock();
    --active_helpers_;
    idle_.notify_all();
  }
}

}  // namespace hearth::data
