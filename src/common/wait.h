// Waiting on a condition with a deadline: the one way tests (and callers that must poll
// something they cannot be notified of) wait. Never a bare sleep that hopes.
#pragma once

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

}  // namespace hearth
