#include "algorithms/kmeans/kmeans_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <cstdio>
#include <string>
#include <utility>

#include "common/clock.h"

namespace hearth::algorithms::kmeans {
namespace {

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace

Status ToFeatureRows(data::Batch& batch, std::size_t feature_dim, const RowSource& source) {
  if (batch.sparse) {
    if (batch.cols > feature_dim) {
      return InvalidArgument("The " + std::string(source.name()) + " channel has feature index " +
                             std::to_string(batch.cols - 1) + ", out of range for feature_dim " +
                             std::to_string(feature_dim) + ".");
    }
    batch.cols = feature_dim;
    batch.Densify();
  } else if (batch.rows > 0 && batch.cols != feature_dim) {
    std::string message = "The " + std::string(source.name()) + " channel's records have " +
                          std::to_string(batch.cols) + " features but feature_dim is " +
                          std::to_string(feature_dim) + ".";
    if (source.csv_label_column()) {
      message +=
          " ContentType 'text/csv' reads the first column as a label; for data without a "
          "label use 'text/csv;label_size=0'.";
    }
    return InvalidArgument(std::move(message));
  }
  return Status::Ok();
}

Result<TrainResult> TrainKMeans(const KMeansConfig& config, RowSource& train,
                                const TrainEvents& events) {
  Rng rng(config.seed);
  const std::size_t dim = config.feature_dim;
  const std::size_t num_candidates = config.k * config.extra_center_factor;
  StreamingKMeans stream(num_candidates, dim, config.init_method, config.half_life_time_size,
                         rng);
  RowStore kept(dim);
  bool keep = config.memory_budget_bytes > 0;
  TrainResult result;
  double last_msd = 0;

  data::Batch batch;
  for (int epoch = 0; epoch < config.epochs; ++epoch) {
    double ssd = 0;
    std::size_t seen = 0;
    if (epoch > 0 && keep) {
      for (const RowSpan& span : kept.Blocks(config.mini_batch_size)) {
        ssd += stream.Update(span.data, span.rows);
        seen += span.rows;
      }
    } else {
      const auto open_start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(auto reader, train.Open(epoch));
      result.read_seconds += SecondsSince(open_start);
      while (true) {
        const auto read_start = std::chrono::steady_clock::now();
        ASSIGN_OR_RETURN(const bool more, reader->Next(config.mini_batch_size, &batch));
        if (!more) break;
        RETURN_IF_ERROR(ToFeatureRows(batch, dim, train));
        result.read_seconds += SecondsSince(read_start);
        ssd += stream.Update(batch.dense.data(), batch.rows);
        seen += batch.rows;
        if (epoch == 0 && keep) {
          if (kept.bytes() + batch.rows * dim * sizeof(float) > config.memory_budget_bytes) {
            events.log("The train channel does not fit the memory budget (" +
                       std::to_string(config.memory_budget_bytes >> 20) +
                       " MiB): training on streamed mini-batches only.");
            keep = false;
            kept.Clear();
          } else {
            batch.dense.resize(batch.rows * dim);
            kept.AppendChunk(std::move(batch.dense));
            batch.dense = {};
          }
        }
      }
    }
    if (epoch == 0) {
      ssd += stream.Finish();
      result.rows = seen;
      if (seen < config.k) {
        return InvalidArgument("The train channel has " + std::to_string(seen) +
                               " records, fewer than k = " + std::to_string(config.k) + ".");
      }
    }
    last_msd = ssd / static_cast<double>(std::max<std::size_t>(seen, 1));
    events.train_msd(last_msd, epoch);
  }

  events.log("shrinking " + std::to_string(stream.centers().rows()) + " centers into " +
             std::to_string(config.k));
  ReduceResult reduced =
      ReduceCenters(stream.centers(), stream.counts(), config.k, config.local_lloyd_num_trials,
                    config.local_lloyd_init_method, config.local_lloyd, rng);
  for (std::size_t t = 0; t < reduced.trials.size(); ++t) {
    events.log("local kmeans attempt #" + std::to_string(t) + ". Current mean square distance " +
               Format("%.6f", reduced.trials[t].inertia / reduced.total_weight));
  }
  const LloydResult& best = reduced.trials[reduced.best];
  // Streaming estimate: rows to their candidate center (last pass) plus candidates to the
  // final centers. Exact when each candidate is the mean of its rows (parallel axis theorem).
  result.centers = best.centers;
  result.train_msd = last_msd + best.inertia / reduced.total_weight;

  if (keep) {
    // The sketch ranks the trials only roughly: every distinct one is refined on the full
    // data, best first, and the lowest full inertia wins.
    std::vector<std::size_t> order(reduced.trials.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return reduced.trials[a].inertia < reduced.trials[b].inertia;
    });
    const LloydSolver solver(kept, {});
    std::vector<double> refined_from;
    for (std::size_t t : order) {
      const double sketch = reduced.trials[t].inertia;
      if (std::any_of(refined_from.begin(), refined_from.end(), [&](double seen) {
            return std::abs(seen - sketch) <= 1e-9 * std::max(seen, sketch);
          })) {
        continue;  // the same local optimum of the sketch, reached again
      }
      refined_from.push_back(sketch);
      LloydResult refined = solver.Run(reduced.trials[t].centers, config.local_lloyd);
      const double msd = refined.inertia / static_cast<double>(kept.rows());
      events.log("Lloyd over all " + std::to_string(kept.rows()) + " rows from attempt #" +
                 std::to_string(t) + ": " + std::to_string(refined.iterations) + " iterations" +
                 (refined.converged ? "" : " (local_lloyd_max_iter reached)") +
                 ", mean square distance " + Format("%.6f", msd));
      if (!result.in_memory || msd < result.train_msd) {
        result.centers = std::move(refined.centers);
        result.train_msd = msd;
        result.refine_iterations = refined.iterations;
        result.in_memory = true;
      }
    }
  }
  events.train_msd(result.train_msd, std::nullopt);
  return result;
}

Result<Evaluation> EvaluateCenters(const Matrix& centers, RowSource& source,
                                   std::size_t mini_batch_size) {
  ASSIGN_OR_RETURN(auto reader, source.Open(0));
  Evaluation evaluation;
  data::Batch batch;
  RowStore rows(centers.cols());
  while (true) {
    ASSIGN_OR_RETURN(const bool more, reader->Next(mini_batch_size, &batch));
    if (!more) break;
    RETURN_IF_ERROR(ToFeatureRows(batch, centers.cols(), source));
    rows.Clear();
    batch.dense.resize(batch.rows * centers.cols());
    rows.AppendChunk(std::move(batch.dense));
    batch.dense = {};
    evaluation.ssd += Inertia(rows, {}, centers);
    evaluation.rows += batch.rows;
  }
  return evaluation;
}

}  // namespace hearth::algorithms::kmeans
