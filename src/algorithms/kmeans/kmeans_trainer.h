// The k-means training pipeline, as SageMaker's built-in runs it, on any source of mini-batches:
//
//   1. `epochs` streaming passes of mini-batch k-means over the train channel with
//      K = k * extra_center_factor centers (seeded by init_method on the first K rows);
//   2. the K centers, weighted by how many rows each absorbed, are reduced to k by
//      local_lloyd_num_trials runs of weighted Lloyd (seeded by local_lloyd_init_method;
//      local_lloyd_max_iter / local_lloyd_tol), keeping the best;
//   3. when the train channel fits in memory (the rows read in pass 1 are kept while they fit
//      `memory_budget_bytes`), each distinct result of step 2 is refined by Lloyd iterations
//      over every row to a local optimum of the full objective (local_lloyd_max_iter /
//      local_lloyd_tol), and the lowest full inertia wins. Later streaming passes then read the
//      kept rows instead of the channel.
//
// Step 3 is Hearth's: SageMaker stops after step 2. It makes the result a true k-means
// solution (what scikit-learn's KMeans computes) instead of an approximation from a sketch.
// All trials are refined because the sketch ranks them only roughly: on scikit-learn's digits
// the sketch's best trial ends 1% above the best refined one.
//
// Thread safety: TrainKMeans and EvaluateCenters are reentrant; a RowSource is used from one
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "algorithms/kmeans/kmeans_core.h"
#include "common/status.h"
#include "data/batch.h"
#include "data/record_reader.h"

namespace hearth::algorithms::kmeans {

struct KMeansConfig {
  std::size_t feature_dim = 0;
  std::size_t k = 0;
  std::size_t mini_batch_size = 5000;
  int epochs = 1;
  InitMethod init_method = InitMethod::kRandom;
  std::size_t extra_center_factor = 10;
  std::int64_t half_life_time_size = 0;
  LloydOptions local_lloyd;  // max_iter / tol, for the reduction and the refinement
  int local_lloyd_num_trials = 10;
  InitMethod local_lloyd_init_method = InitMethod::kKMeansPlusPlus;
  std::size_t memory_budget_bytes = 0;  // 0: never keep rows in memory
  std::uint64_t seed = 0;
};

// A channel as the trainer reads it.
class RowSource {
 public:
  virtual ~RowSource() = default;
  // A reader over pass number `epoch` (0-based) of the channel.
  virtual Result<std::unique_ptr<data::RecordReader>> Open(int epoch) = 0;
  // For messages: "train", "test".
  virtual std::string_view name() const = 0;
  // Whether the channel's ContentType reads the first CSV column as a label (plain
  // `text/csv`), to explain a width mismatch.
  virtual bool csv_label_column() const { return false; }
};

// Turns `batch` into dense rows of exactly `feature_dim` values (sparse rows are densified;
// labels and weights are ignored). InvalidArgument naming the channel and both widths.
Status ToFeatureRows(data::Batch& batch, std::size_t feature_dim, const RowSource& source);

struct TrainEvents {
  std::function<void(std::string_view)> log = [](std::string_view) {};
  // Mean squared distance of the train rows: per streaming pass (`epoch` set) and final.
  std::function<void(double msd, std::optional<int> epoch)> train_msd =
      [](double, std::optional<int>) {};
};

struct TrainResult {
  Matrix centers;            // k x feature_dim
  std::size_t rows = 0;      // train rows per pass
  // Mean squared distance of the train rows to the final centers: exact in memory; streaming,
  // the last pass's distances to the K candidates plus the candidates' weighted distances to
  // the k centers.
  double train_msd = 0;
  bool in_memory = false;    // step 3 ran
  int refine_iterations = 0;
  double read_seconds = 0;   // reading and densifying the channel, all passes
};

Result<TrainResult> TrainKMeans(const KMeansConfig& config, RowSource& train,
                                const TrainEvents& events);

struct Evaluation {
  double ssd = 0;  // sum over rows of the squared distance to the nearest center
  std::size_t rows = 0;
  double msd() const { return rows == 0 ? 0.0 : ssd / static_cast<double>(rows); }
};

// Reads one pass of `source` and measures it against `centers`.
Result<Evaluation> EvaluateCenters(const Matrix& centers, RowSource& source,
                                   std::size_t mini_batch_size);

}  // namespace hearth::algorithms::kmeans
