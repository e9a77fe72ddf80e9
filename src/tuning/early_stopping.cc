#include "tuning/early_stopping.h"

#include <algorithm>
#include <vector>

#include "tuning/search_space.h"

namespace hearth::tuning {

TrialDecision MedianStoppingRule::Report(TrialId trial, std::int64_t epoch, double value) {
  curves_[trial][epoch] = value;
  std::vector<double> running_averages;
  for (const auto& [peer, curve] : curves_) {
    if (peer >= trial) break;  // ordered by id: only previous jobs count
    if (curve.empty() || curve.rbegin()->first < epoch) continue;
    double sum = 0;
    int count = 0;
    for (auto it = curve.begin(); it != curve.end() && it->first <= epoch; ++it) {
      sum += it->second;
      ++count;
    }
    if (count > 0) running_averages.push_back(sum / count);
  }
  const int n = static_cast<int>(running_averages.size());
  if (n < std::max(1, options_.min_peers)) return {};
  std::sort(running_averages.begin(), running_averages.end());
  const double median = n % 2 == 1 ? running_averages[n / 2]
                                   : 0.5 * (running_averages[n / 2 - 1] + running_averages[n / 2]);
  const bool worse =
      options_.objective == ObjectiveType::kMinimize ? value > median : value < median;
  if (!worse) return {};
  return {TrialAction::kStop, "Objective " + FormatDouble(value) + " at epoch " +
                                  std::to_string(epoch) +
                                  " is worse than the median of earlier training jobs' running "
                                  "averages (" +
                                  FormatDouble(median) + ")"};
}

}  // namespace hearth::tuning
