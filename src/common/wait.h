// Waiting on a condition with a deadline: the one way tests (and callers that must poll
// something they cannot be notified of) wait. Never a bare sleep that hopes.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

namespace hearth {

// Polls `done` every `interval` until it returns true or `timeout` passes; returns the last
// answer.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(20000),
                    std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(interval);
  }
  return done();
}

// The waits between polls of something that is usually ready soon (a process starting to
// listen): `first`, doubling up to `cap`. What is ready in 30 ms is seen a few ms after, and
// what takes seconds costs one poll per `cap`.
class PollBackoff {
 public:
  explicit PollBackoff(std::chrono::milliseconds cap,
                       std::chrono::milliseconds first = std::chrono::milliseconds(2))
      : cap_(cap), next_(std::min(first, cap)) {}

  std::chrono::milliseconds Next() {
    const std::chrono::milliseconds wait = next_;
    next_ = std::min(next_ * 2, cap_);
    return wait;
  }
  void Sleep() { std::this_thread::sleep_for(Next()); }

 private:
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds next_;
};

}  // namespace hearth
