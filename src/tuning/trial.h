// The small vocabulary shared by strategies and stopping rules: objective direction, trial ids
// and the answer to an intermediate objective value.
#pragma once

#include <cstdint>
#include <string>

namespace hearth::tuning {

// HyperParameterTuningJobObjective.Type.
enum class ObjectiveType { kMinimize, kMaximize };

// Trials are numbered 0, 1, 2, ... in the order they were created.
using TrialId = std::int64_t;

enum class TrialAction { kContinue, kStop };

struct TrialDecision {
  TrialAction action = TrialAction::kContinue;
  // Why a trial is stopped, for its status message; empty when it continues.
  std::string reason;
};

}  // namespace hearth::tuning
