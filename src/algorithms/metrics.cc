#include "algorithms/algorithm.h"
#include "fmt/format.h"

namespace hearth::algorithms {

std::string MetricLineRegex(std::string_view channel, std::string_view metric) {
  // Matches both the final line and the per-epoch ones, so FinalMetricDataList holds the
  // last value printed and tuning jobs see every epoch's.
  return fmt::format("#quality_metric: host=\\S+, (?:epoch=\\d+, )?{} {} <score>=(\\S+)", channel,
                     metric);
}

MetricDefinition QualityMetric(std::string_view channel, std::string_view metric) {
  return {fmt::format("{}:{}", channel, metric), MetricLineRegex(channel, metric)};
}

}  // namespace hearth::algorithms
