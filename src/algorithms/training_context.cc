#include "algorithms/training_context.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace hearth::algorithms {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

Result<json> ReadJson(const fs::path& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (required) return InvalidArgument("cannot read " + path.string());
    return json::object();
  }
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("{} is not valid JSON: {}", path.string(), e.what()));
  }
}

fs::path EnvPath(const char* name, const fs::path& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? fs::path(v) : fallback;
}

// Hyperparameter values are strings in hyperparameters.json, but tools that write the file
// by hand (and JSON-encoding SDKs) may put numbers or booleans there: keep their text.
std::string AsString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

Result<std::unique_ptr<TrainingContext>> TrainingContext::Load(
    std::string_view default_content_type) {
  // Hearth sets SM_INPUT_DIR & co. for every host (sandboxed: /opt/ml/...; not: the host's
  // own directory); a process started by hand falls back to /opt/ml.
  fs::path ml = EnvPath("SAGEMAKER_BASE_DIR", "/opt/ml");
  ASSIGN_OR_RETURN(auto ctx, LoadFrom(EnvPath("SM_INPUT_DIR", ml / "input").parent_path(),
                                      default_content_type));
  ctx->model_dir_ = EnvPath("SM_MODEL_DIR", ctx->model_dir_);
  ctx->output_dir_ = EnvPath("SM_OUTPUT_DIR", ctx->output_dir_);
  return ctx;
}

Result<std::unique_ptr<TrainingContext>> TrainingContext::LoadFrom(
    const fs::path& ml_dir, std::string_view default_content_type) {
  auto ctx = std::make_unique<TrainingContext>();
  fs::path config = ml_dir / "input" / "config";
  ctx->model_dir_ = ml_dir / "model";
  ctx->output_dir_ = ml_dir / "output";

  ASSIGN_OR_RETURN(json hps, ReadJson(config / "hyperparameters.json", false));
  if (!hps.is_object()) return InvalidArgument("hyperparameters.json must hold a JSON object");
  for (const auto& [k, v] : hps.items()) ctx->raw_hps_[k] = AsString(v);

  ASSIGN_OR_RETURN(json resources, ReadJson(config / "resourceconfig.json", false));
  if (resources.is_object()) {
    ctx->current_host_ = resources.value("current_host", ctx->current_host_);
    if (resources.contains("hosts") && resources["hosts"].is_array()) {
      ctx->hosts_ = resources["hosts"].get<std::vector<std::string>>();
    }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  ctx->num_cpus_ = cpus > 0 ? static_cast<int>(cpus) : 1;

  ASSIGN_OR_RETURN(json channels, ReadJson(config / "inputdataconfig.json", false));
  if (!channels.is_object()) return InvalidArgument("inputdataconfig.json must hold an object");
  for (const auto& [name, spec] : channels.items()) {
    ChannelInfo info;
    info.name = name;
    info.content_type_text = spec.value("ContentType", std::string(default_content_type));
    if (info.content_type_text.empty()) info.content_type_text = default_content_type;
    auto type = data::ParseContentType(info.content_type_text,
                                       fmt::format("ContentType of channel '{}'", name));
    if (!type.ok()) return type.status();
    info.content_type = *type;
    info.pipe = spec.value("TrainingInputMode", "File") == "Pipe";
    info.dir = info.pipe ? ml_dir / "input" / "data" : ml_dir / "input" / "data" / name;
    ctx->channels_[name] = std::move(info);
  }
  return ctx;
}

bool TrainingContext::HasChannel(std::string_view name) const {
  return channels_.contains(std::string(name));
}

Result<std::unique_ptr<data::RecordReader>> TrainingContext::OpenChannel(std::string_view name,
                                                                         int epoch) const {
  auto it = channels_.find(std::string(name));
  if (it == channels_.end()) {
    return NotFound(fmt::format("The '{}' channel was not provided.", name));
  }
  const ChannelInfo& ch = it->second;
  std::vector<fs::path> files;
  if (ch.pipe) {
    files.push_back(ch.dir / fmt::format("{}_{}", ch.name, epoch));
  } else {
    std::error_code ec;
    for (fs::recursive_directory_iterator i(ch.dir, ec), end; !ec && i != end; i.increment(ec)) {
      if (i->path().filename().string().starts_with(".")) {
        if (i->is_directory()) i.disable_recursion_pending();
        continue;
      }
      if (i->is_regular_file()) files.push_back(i->path());
    }
    if (ec) {
      return InvalidArgument(fmt::format("cannot list channel '{}' at {}: {}", ch.name,
                                         ch.dir.string(), ec.message()));
    }
    std::sort(files.begin(), files.end());
  }
  auto reader = data::OpenFileReader(std::move(files), ch.content_type);
  if (!reader.ok()) {
    return Status(reader.status().code(),
                  fmt::format("channel '{}': {}", ch.name, reader.status().message()));
  }
  return reader;
}

void TrainingContext::EmitMetric(std::string_view channel, std::string_view metric, double value,
                                 std::optional<int> epoch) const {
  std::string line =
      epoch ? fmt::format("#quality_metric: host={}, epoch={}, {} {} <score>={}\n", current_host_,
                          *epoch, channel, metric, value)
            : fmt::format("#quality_metric: host={}, {} {} <score>={}\n", current_host_, channel,
                          metric, value);
  std::lock_guard<std::mutex> lock(out_mu_);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void TrainingContext::Log(std::string_view line) const {
  std::lock_guard<std::mutex> lock(out_mu_);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void TrainingContext::LogPhase(std::string_view phase, double seconds) const {
  Log(fmt::format("#phase: {} seconds={:.6f}", phase, seconds));
}

}  // namespace hearth::algorithms
