#include "algorithms/run_training.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "fmt/format.h"

namespace hearth::algorithms {

namespace fs = std::filesystem;

namespace {

bool IsClientError(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
         s.code() == StatusCode::kFailedPrecondition;
}

int Fail(const fs::path& output_dir, const Status& status) {
  std::string reason =
      fmt::format("{}: {}", IsClientError(status) ? "ClientError" : "AlgorithmError",
                  status.message());
  fmt::print(stderr, "{}\n", reason);
  std::fflush(stderr);
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  // The platform reads this after the process exits; no fsync needed before exit.
  Status written = WriteFileAtomic(output_dir / "failure", reason, Durability::kSurvivesProcessCrash);
  if (!written.ok()) fmt::print(stderr, "cannot write the failure file: {}\n", written.message());
  return 2;
}

}  // namespace

int RunTraining(const Algorithm& algorithm) {
  auto ctx = TrainingContext::Load(algorithm.default_content_type());
  if (!ctx.ok()) {
    const char* out = std::getenv("SM_OUTPUT_DIR");
    return Fail(out && *out ? fs::path(out) : fs::path("/opt/ml/output"), ctx.status());
  }
  const TrainingContext& context = **ctx;
  auto hps = Hyperparameters::Parse(algorithm.hyperparameter_specs(),
                                    context.raw_hyperparameters());
  if (!hps.ok()) return Fail(context.output_dir(), hps.status());

  std::string listed;
  for (const auto& [k, v] : hps->values()) listed += fmt::format("{}'{}': '{}'", listed.empty() ? "" : ", ", k, v);
  context.Log(fmt::format("[{}] hyperparameters: {{{}}}", algorithm.name(), listed));
  std::string channels;
  for (const auto& [name, ch] : context.channels()) {
    channels += fmt::format("{}{} ({}, {})", channels.empty() ? "" : ", ", name,
                            ch.content_type_text, ch.pipe ? "Pipe" : "File");
  }
  context.Log(fmt::format("[{}] channels: {}", algorithm.name(), channels));

  Status trained = algorithm.Train(context, *hps);
  if (!trained.ok()) return Fail(context.output_dir(), trained);
  context.Log(fmt::format("[{}] training complete", algorithm.name()));
  return 0;
}

}  // namespace hearth::algorithms
