// MedianStoppingRule: SageMaker's early stopping (TrainingJobEarlyStoppingType Auto) for the
// Random and Bayesian strategies. After each epoch of a training job:
//   - take, for every previous training job (a lower trial id) that has reached this epoch, the
//     running average of its objective over its epochs up to this one;
//   - if the current job's objective at this epoch is worse than the median of those running
//     averages (higher when minimising, lower when maximising), stop it.
// Jobs report at the epochs they log; a previous job "has reached" epoch e once it reported an
// epoch >= e, and its running average covers its reports at epochs <= e. No decision is taken
// until `min_peers` previous jobs have reached the epoch: a median of one or two curves says
// little.
//
// The decision depends on the values reported so far and their order; replaying the recorded
// reports rebuilds the rule.
//
// Thread safety: not thread safe; the owner serialises calls.
#pragma once

#include <cstdint>
#include <map>

#include "tuning/trial.h"

namespace hearth::tuning {

class MedianStoppingRule {
 public:
  struct Options {
    ObjectiveType objective = ObjectiveType::kMinimize;
    int min_peers = 5;
  };

  explicit MedianStoppingRule(Options options) : options_(options) {}

  // Records `value` as trial `trial`'s objective at `epoch` and decides. A repeated epoch
  // replaces the earlier value.
  TrialDecision Report(TrialId trial, std::int64_t epoch, double value);

 private:
  Options options_;
  std::map<TrialId, std::map<std::int64_t, double>> curves_;
};

}  // namespace hearth::tuning
