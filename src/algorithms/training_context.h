// TrainingContext: what a built-in algorithm sees of the SageMaker training contract
// (reference/sagemaker-api.md §3), read once at start-up.
//
// Paths come from SM_INPUT_DIR / SM_MODEL_DIR / SM_OUTPUT_DIR when set (Hearth sets them for
// every host, sandboxed or not), else /opt/ml. Channels come from inputdataconfig.json; a
// channel's ContentType defaults to `default_content_type` (text/csv for most built-ins,
// text/libsvm for XGBoost).
//
// Metrics are printed as log lines that the algorithm's MetricDefinitions match (see
// algorithm.h, MetricLine): the platform turns them into FinalMetricDataList and tuning jobs
// read them, with no user regexes.
//
// Thread safety: OpenChannel and EmitMetric may be called from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/record_reader.h"

namespace hearth::algorithms {

struct ChannelInfo {
  std::string name;
  std::filesystem::path dir;          // input/data/<name> (File) or input/data (Pipe FIFOs)
  data::ContentType content_type;
  std::string content_type_text;      // as given, for messages
  bool pipe = false;                  // TrainingInputMode Pipe
};

class TrainingContext {
 public:
  // Reads the config files under the input dir. InvalidArgument for a malformed file or an
  // unsupported ContentType (naming the channel).
  static Result<std::unique_ptr<TrainingContext>> Load(std::string_view default_content_type);
  // For tests: everything under `ml_dir` (the /opt/ml equivalent).
  static Result<std::unique_ptr<TrainingContext>> LoadFrom(const std::filesystem::path& ml_dir,
                                                           std::string_view default_content_type);

  const std::map<std::string, std::string>& raw_hyperparameters() const { return raw_hps_; }
  const std::map<std::string, ChannelInfo>& channels() const { return channels_; }
  bool HasChannel(std::string_view name) const;
  const std::filesystem::path& model_dir() const { return model_dir_; }
  const std::filesystem::path& output_dir() const { return output_dir_; }
  const std::string& current_host() const { return current_host_; }
  const std::vector<std::string>& hosts() const { return hosts_; }
  int num_cpus() const { return num_cpus_; }

  // A reader over one pass (epoch) of a channel. File mode: every regular file under the
  // channel directory, in path order (hidden files skipped), re-read each epoch. Pipe mode:
  // the FIFO <channel>_<epoch>. NotFound if the channel was not given.
  Result<std::unique_ptr<data::RecordReader>> OpenChannel(std::string_view name, int epoch) const;

  // Prints "#quality_metric: host=algo-1, [epoch=3, ]<channel> <metric> <score>=<value>"
  // (SageMaker built-ins' format) and flushes, so MetricLineRegex sees it at once. Per-epoch
  // values pass `epoch`; the final value of a metric is the last line printed.
  void EmitMetric(std::string_view channel, std::string_view metric, double value,
                  std::optional<int> epoch = std::nullopt) const;
  // Prints one line to stdout (the job's log) and flushes.
  void Log(std::string_view line) const;
  // Prints "#phase: <phase> seconds=<s>": how long reading, fitting, writing took. bench/
  // reads these lines to set an algorithm's fit time beside a peer's.
  void LogPhase(std::string_view phase, double seconds) const;

 private:
  std::map<std::string, std::string> raw_hps_;
  std::map<std::string, ChannelInfo> channels_;
  std::filesystem::path model_dir_, output_dir_;
  std::string current_host_ = "algo-1";
  std::vector<std::string> hosts_{"algo-1"};
  int num_cpus_ = 1;
  mutable std::mutex out_mu_;
};

}  // namespace hearth::algorithms
