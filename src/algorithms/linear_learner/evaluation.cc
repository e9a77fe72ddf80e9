#include "algorithms/linear_learner/evaluation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace hearth::algorithms::linear_learner {
namespace {

double Softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

float Sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

double FBeta(double precision, double recall, double beta) {
  const double b2 = beta * beta;
  const double denominator = b2 * precision + recall;
  return denominator > 0 ? (1 + b2) * precision * recall / denominator : 0.0;
}

}  // namespace

LossParams LossParamsFrom(const Options& options) {
  return {.loss = options.loss,
          .outputs = options.num_classes == 2 ? 1 : options.num_classes,
          .margin = options.margin,
          .quantile = options.quantile,
          .insensitivity = options.loss_insensitivity,
          .huber_delta = options.huber_delta};
}

double ExampleLoss(const LossParams& p, const float* z, float y) {
  switch (p.loss) {
    case Loss::kLogistic:
    case Loss::kHinge: {
      double sum = 0;
      for (int k = 0; k < p.outputs; ++k) {
        const double target = p.outputs == 1 ? y : (static_cast<int>(y) == k ? 1.0 : 0.0);
        if (p.loss == Loss::kLogistic) {
          sum += Softplus(z[k]) - target * z[k];
        } else {
          sum += std::max(0.0, p.margin - (2 * target - 1) * z[k]);
        }
      }
      return sum;
    }
    case Loss::kSoftmax: {
      const float max = *std::max_element(z, z + p.outputs);
      double sum = 0;
      for (int k = 0; k < p.outputs; ++k) sum += std::exp(double(z[k]) - max);
      return std::log(sum) + max - z[static_cast<int>(y)];
    }
    default: break;
  }
  const double r = double(z[0]) - y;
  const double a = std::abs(r);
  switch (p.loss) {
    case Loss::kSquared: return r * r;
    case Loss::kAbsolute: return a;
    case Loss::kEpsInsensitiveSquared: {
      const double e = std::max(0.0, a - p.insensitivity);
      return e * e;
    }
    case Loss::kEpsInsensitiveAbsolute: return std::max(0.0, a - p.insensitivity);
    case Loss::kQuantile: return r <= 0 ? -p.quantile * r : (1 - p.quantile) * r;
    case Loss::kHuber: return a <= p.huber_delta ? 0.5 * r * r : p.huber_delta * (a - 0.5 * p.huber_delta);
    default: return 0;
  }
}

MetricAccumulator::MetricAccumulator(const Options& options, LossParams params)
    : options_(options), params_(params) {
  if (options_.predictor_type == PredictorType::kMulticlassClassifier) {
    true_positives_.assign(params_.outputs, 0);
    predicted_.assign(params_.outputs, 0);
    actual_.assign(params_.outputs, 0);
  }
}

void MetricAccumulator::Add(const float* z, const float* labels, std::size_t rows) {
  const int k_out = params_.outputs;
  if (options_.predictor_type == PredictorType::kBinaryClassifier &&
      params_.loss == Loss::kLogistic) {
    // The common case, kept cheap (model selection scores every model on a sample): one
    // exponential gives both the loss and the probability.
    for (std::size_t r = 0; r < rows; ++r) {
      const float zr = z[r];
      const float e = std::exp(-std::abs(zr));
      loss_sum_ += std::log1p(e) + std::max(zr, 0.0f) - labels[r] * zr;
      binary_scores_.push_back(zr >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e));
      binary_labels_.push_back(labels[r]);
    }
    rows_ += rows;
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const float* zr = z + r * k_out;
    const float y = labels[r];
    loss_sum_ += ExampleLoss(params_, zr, y);
    switch (options_.predictor_type) {
      case PredictorType::kRegressor: {
        const double e = double(zr[0]) - y;
        squared_error_sum_ += e * e;
        absolute_error_sum_ += std::abs(e);
        label_sum_ += y;
        label_square_sum_ += double(y) * y;
        break;
      }
      case PredictorType::kBinaryClassifier:
        binary_scores_.push_back(params_.loss == Loss::kLogistic ? Sigmoid(zr[0]) : zr[0]);
        binary_labels_.push_back(y);
        break;
      case PredictorType::kMulticlassClassifier: {
        const int truth = static_cast<int>(y);
        const int predicted = static_cast<int>(std::max_element(zr, zr + k_out) - zr);
        int rank = 0;  // classes scored strictly above the true one
        for (int k = 0; k < k_out; ++k) rank += zr[k] > zr[truth];
        actual_[truth] += 1;
        predicted_[predicted] += 1;
        if (predicted == truth) {
          true_positives_[truth] += 1;
          top1_hits_ += 1;
        }
        if (rank < options_.accuracy_top_k) top_k_hits_ += 1;
        dcg_sum_ += 1.0 / std::log2(rank + 2.0);
        break;
      }
    }
  }
  rows_ += rows;
}

MetricList MetricAccumulator::Metrics(float threshold) const {
  MetricList out;
  if (rows_ == 0) return out;
  const double n = static_cast<double>(rows_);
  out.emplace_back("objective_loss", loss_sum_ / n);
  switch (options_.predictor_type) {
    case PredictorType::kRegressor: {
      const double mse = squared_error_sum_ / n;
      const double total = label_square_sum_ - label_sum_ * label_sum_ / n;
      out.emplace_back("mse", mse);
      out.emplace_back("rmse", std::sqrt(mse));
      out.emplace_back("absolute_loss", absolute_error_sum_ / n);
      out.emplace_back("r2", total > 0 ? 1.0 - squared_error_sum_ / total : 0.0);
      break;
    }
    case PredictorType::kBinaryClassifier: {
      double tp = 0, fp = 0, fn = 0, correct = 0;
      for (std::size_t i = 0; i < binary_scores_.size(); ++i) {
        const bool predicted = binary_scores_[i] > threshold;
        const bool positive = binary_labels_[i] > 0.5f;
        tp += predicted && positive;
        fp += predicted && !positive;
        fn += !predicted && positive;
        correct += predicted == positive;
      }
      const double precision = tp + fp > 0 ? tp / (tp + fp) : 0.0;
      const double recall = tp + fn > 0 ? tp / (tp + fn) : 0.0;
      out.emplace_back("binary_classification_accuracy", correct / n);
      out.emplace_back("precision", precision);
      out.emplace_back("recall", recall);
      out.emplace_back("binary_f_beta", FBeta(precision, recall, options_.f_beta));
      out.emplace_back("roc_auc_score", RocAuc(binary_scores_, binary_labels_));
      break;
    }
    case PredictorType::kMulticlassClassifier: {
      double precision_sum = 0, recall_sum = 0, f_sum = 0;
      int classes = 0;
      for (std::size_t k = 0; k < actual_.size(); ++k) {
        if (actual_[k] == 0 && predicted_[k] == 0) continue;  // a class seen on neither side
        const double precision = predicted_[k] > 0 ? true_positives_[k] / predicted_[k] : 0.0;
        const double recall = actual_[k] > 0 ? true_positives_[k] / actual_[k] : 0.0;
        precision_sum += precision;
        recall_sum += recall;
        f_sum += FBeta(precision, recall, options_.f_beta);
        ++classes;
      }
      out.emplace_back("multiclass_accuracy", top1_hits_ / n);
      out.emplace_back("multiclass_top_k_accuracy", top_k_hits_ / n);
      out.emplace_back("macro_precision", precision_sum / classes);
      out.emplace_back("macro_recall", recall_sum / classes);
      out.emplace_back("macro_f_beta", f_sum / classes);
      out.emplace_back("dcg", dcg_sum_ / n);
      break;
    }
  }
  return out;
}

double RocAuc(std::span<const float> scores, std::span<const float> labels) {
  std::vector<std::uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] < scores[b]; });
  // Mann-Whitney U with tied ranks averaged.
  double positives = 0, rank_sum = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mean_rank = (i + 1 + j) / 2.0;
    for (std::size_t t = i; t < j; ++t) {
      if (labels[order[t]] > 0.5f) {
        positives += 1;
        rank_sum += mean_rank;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(order.size()) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

ThresholdChoice TuneThreshold(std::span<const float> scores, std::span<const float> labels,
                              SelectionCriterion criterion, float beta, float target_recall,
                              float target_precision, float default_threshold) {
  const std::size_t n = scores.size();
  if (n == 0) return {default_threshold, 0};
  double positives = 0;
  for (float y : labels) positives += y > 0.5f;
  const double negatives = static_cast<double>(n) - positives;
  if (criterion == SelectionCriterion::kLossFunction) {
    double correct = 0;
    for (std::size_t i = 0; i < n; ++i) correct += (scores[i] > default_threshold) == (labels[i] > 0.5f);
    return {default_threshold, correct / n};
  }

  auto value_of = [&](double tp, double fp) {
    const double fn = positives - tp;
    const double precision = tp + fp > 0 ? tp / (tp + fp) : 1.0;
    const double recall = positives > 0 ? tp / positives : 0.0;
    switch (criterion) {
      case SelectionCriterion::kAccuracy: return (tp + negatives - fp) / n;
      case SelectionCriterion::kFBeta: {
        const double b2 = double(beta) * beta;
        const double d = (1 + b2) * tp + b2 * fn + fp;
        return d > 0 ? (1 + b2) * tp / d : 0.0;
      }
      case SelectionCriterion::kPrecisionAtTargetRecall:
        return recall >= target_recall ? precision : -1.0;
      case SelectionCriterion::kRecallAtTargetPrecision:
        return precision >= target_precision ? recall : -1.0;
      default: return 0.0;
    }
  };

  // A histogram of 2^16 bins over [lowest, highest] score stands in for a sort: O(n), and
  // finer than any threshold a calibration sample can tell apart. Candidate c (c = 0 … bins)
  // predicts positive the rows in the c highest bins; runs of candidates across empty bins
  // carry equal values, so taking the middle of the best run puts the threshold halfway
  // between the scores on either side.
  constexpr std::size_t kBins = std::size_t{1} << 16;
  const auto [lowest_it, highest_it] = std::minmax_element(scores.begin(), scores.end());
  const float lowest = *lowest_it, highest = *highest_it;
  const double width = (double(highest) - lowest) / kBins;
  std::vector<std::uint32_t> positive_in(kBins, 0), negative_in(kBins, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t bin =
        width > 0 ? std::min(kBins - 1, static_cast<std::size_t>((scores[i] - lowest) / width))
                  : kBins - 1;
    (labels[i] > 0.5f ? positive_in : negative_in)[bin] += 1;
  }
  std::vector<double> values(kBins + 1);
  double tp = 0, fp = 0;
  values[0] = value_of(0, 0);  // nothing positive
  for (std::size_t c = 1; c <= kBins; ++c) {
    tp += positive_in[kBins - c];
    fp += negative_in[kBins - c];
    values[c] = value_of(tp, fp);
  }
  const std::size_t best = std::max_element(values.begin(), values.end()) - values.begin();
  std::size_t last = best;
  while (last + 1 < values.size() && values[last + 1] == values[best]) ++last;
  const std::size_t pick = (best + last) / 2;
  if (values[best] < 0) {
    // No threshold reaches the target: fall back to the default decision rule.
    return {default_threshold, 0.0};
  }
  // Candidate c keeps bins kBins - c and up: "score > t" with t just under that bin's edge.
  constexpr float kDown = -std::numeric_limits<float>::infinity();
  float threshold = highest;
  if (pick == kBins) {
    threshold = std::nextafter(lowest, kDown);
  } else if (pick > 0) {
    threshold = std::nextafter(static_cast<float>(lowest + width * double(kBins - pick)), kDown);
  }
  return {threshold, values[best]};
}

}  // namespace hearth::algorithms::linear_learner
