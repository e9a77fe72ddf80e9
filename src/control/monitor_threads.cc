#include "control/monitor_threads.h"

#include <exception>

#include "spdlog/spdlog.h"

namespace hearth::control {

MonitorThreads::MonitorThreads(std::string kind) : kind_(std::move(kind)) {}

MonitorThreads::~MonitorThreads() { Shutdown(); }

void MonitorThreads::Shutdown() {
  shutting_down_ = true;
  std::map<std::string, std::shared_ptr<Thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  // Threads that end meanwhile find themselves unregistered and leave the join to us.
  for (auto& [name, t] : threads) {
    if (t->thread.joinable()) t->thread.join();
  }
}

void MonitorThreads::Start(const std::string& name, Body body) {
  std::lock_guard<std::mutex> lock(mu_);
  StartLocked(name, std::move(body));
}

void MonitorThreads::StartLocked(const std::string& name, Body body) {
  // Shutdown raises the flag before it takes the threads: a thread added later would not be
  // joined (the resource stays recorded and the next Recover() resumes it).
  if (shutting_down_) return;
  auto t = std::make_shared<Thread>();
  auto& slot = threads_[name];
  if (slot && slot->thread.joinable()) slot->thread.detach();  // a finished earlier run
  slot = t;
  t->thread = std::thread([this, name, t, body = std::move(body)] {
    bool finished = false;
    try {
      finished = body(t->run);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: monitor failed: {}", kind_, name, e.what());
    }
    // Nothing touches `this` after the lock is released: once unregistered, this thread is
    // not joined by Shutdown.
    std::lock_guard<std::mutex> done(mu_);
    auto it = threads_.find(name);
    if (it != threads_.end() && it->second == t) {
      t->thread.detach();
      threads_.erase(it);
      if (t->run.end_requested && !finished) StartLocked(name, body);
    }
  });
}

bool MonitorThreads::RequestEnd(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = threads_.find(name);
  if (it == threads_.end()) return false;
  it->second->run.end_requested = true;
  return true;
}

bool MonitorThreads::RequestUpdate(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = threads_.find(name);
  if (it == threads_.end()) return false;
  it->second->run.update_requested = true;
  return true;
}

std::size_t MonitorThreads::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

}  // namespace hearth::control
