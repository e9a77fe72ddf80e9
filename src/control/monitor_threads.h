// MonitorThreads: the monitor threads of one controller — at most one per resource name, each
// driving its resource (a training job, an endpoint, a transform job) through its state
// machine while the API threads only record requests and raise flags.
//
// A thread forgets itself when its body returns, so a server that has run many jobs keeps no
// thread for each. If the API asked the resource to end (RequestEnd: a stop, a delete) as the
// body was returning without having finished it, a new thread runs the body again: a request
// that found the old thread still registered is never left undone.
//
// Shutdown (or the destructor) raises shutting_down(), which bodies poll to return promptly
// leaving their resource as recorded (the next Recover() resumes it), and joins every thread.
//
// Thread safety: thread safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace hearth::control {

class MonitorThreads {
 public:
  // Flags the API threads raise for one resource's monitor thread.
  struct Run {
    std::atomic<bool> end_requested{false};    // stop / delete
    std::atomic<bool> update_requested{false};  // the desired state changed: read the record
  };
  // Returns true when the resource needs nothing more from this run (it reached a state
  // that needs no monitor, or was removed); false when it was left to a later run.
  using Body = std::function<bool(Run& run)>;

  // `kind` names the resources in log lines ("endpoint", "training job").
  explicit MonitorThreads(std::string kind);
  ~MonitorThreads();
  MonitorThreads(const MonitorThreads&) = delete;
  MonitorThreads& operator=(const MonitorThreads&) = delete;

  // Runs `body` on a new thread for `name`. An exception from the body is logged (a bug, not
  // an expected failure) and the resource left for the next Recover(). Does nothing once
  // shutting down.
  void Start(const std::string& name, Body body);
  // Raise a flag on the resource's running monitor; false if it has none.
  bool RequestEnd(const std::string& name);
  bool RequestUpdate(const std::string& name);

  bool shutting_down() const { return shutting_down_.load(); }
  // Raises shutting_down() and joins every thread. Idempotent.
  void Shutdown();
  // Resources with a monitor thread right now (diagnostics, tests).
  std::size_t size();

 private:
  struct Thread {
    Run run;
    std::thread thread;
  };

  void StartLocked(const std::string& name, Body body);  // REQUIRES(mu_)

  std::string kind_;
  std::atomic<bool> shutting_down_{false};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Thread>> threads_;  // GUARDED_BY(mu_)
};

}  // namespace hearth::control
