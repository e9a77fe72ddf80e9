// Runs a tuning strategy (src/tuning/) directly on an objective, as a tuning job would drive it
// but with the training job replaced by a function call.
//
// Synthetic mode: Branin (2-D, minimum 0.397887) or Hartmann6 (6-D, minimum -3.32237). For each
// seed it prints one JSON line: the best-so-far regret after each completed evaluation and the
// time of every Suggest call.
//
// With --parallel q, q trials are kept pending: the oldest completes, one new one is suggested
// (so each suggestion sees q - 1 pending trials, as under MaxParallelTrainingJobs = q). After
// the last evaluation one more Suggest(1) is timed with all of them observed and none pending
// ("final_suggest_ms" wall, "final_suggest_cpu_ms" CPU: the time to suggest with --trials
// observations).
//
//   hearth_tuning_bench --function branin|hartmann6 [--strategy bayesian|random]
//                       [--seeds 20] [--first-seed 0] [--trials 100] [--parallel 1]
//
// External mode (--ranges): the objective is evaluated by whoever drives this program, over a
// line protocol on stdin/stdout, for one seed. FILE.json holds a ParameterRanges object as
// CreateHyperParameterTuningJob takes it. The strategy is created as the tuning job controller
// creates it (RandomSeed = --seed, the objective type, the parsed ranges) and driven the same
// way: Suggest(1) while fewer than --parallel trials are pending, then the oldest pending trial
// completes. For each suggestion one line goes out,
//   {"trial":0,"hyperparameters":{"eta":"0.0312","max_depth":"4",...}}
// and, for the oldest pending trial, one line comes back: its objective value as a number, or
// anything that is not a number (e.g. "fail") for a trial that failed. After --trials trials
// one last line, {"done":true,"best_trial":N}, and the program exits.
//
//   hearth_tuning_bench --ranges FILE.json [--objective Maximize|Minimize] --seed N
//                       [--trials 30] [--parallel 1] [--strategy bayesian|random]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tuning/search_space.h"
#include "tuning/strategy.h"

namespace tuning = hearth::tuning;

namespace {

double Branin(const std::vector<double>& x) {
  const double pi = std::numbers::pi;
  const double b = 5.1 / (4 * pi * pi);
  const double c = 5 / pi;
  const double t = 1 / (8 * pi);
  const double u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
  return u * u + 10 * (1 - t) * std::cos(x[0]) + 10;
}

double Hartmann6(const std::vector<double>& x) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double a[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                 {0.05, 10, 17, 0.1, 8, 14},
                                 {3, 3.5, 1.7, 10, 17, 8},
                                 {17, 8, 0.05, 10, 0.1, 14}};
  static const double p[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                 {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                 {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                 {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) inner += a[i][j] * (x[j] - p[i][j]) * (x[j] - p[i][j]);
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

struct Problem {
  std::vector<tuning::ParameterRange> ranges;
  double (*f)(const std::vector<double>&);
  double minimum;
};

Problem MakeProblem(const std::string& name) {
  auto range = [](std::string n, double lo, double hi) {
    tuning::ParameterRange r;
    r.name = std::move(n);
    r.type = tuning::ParameterType::kContinuous;
    r.scaling = tuning::ScalingType::kLinear;
    r.min_value = lo;
    r.max_value = hi;
    return r;
  };
  if (name == "branin")
    return {{range("x1", -5, 10), range("x2", 0, 15)}, Branin, 0.39788735772973816};
  if (name == "hartmann6") {
    Problem p{{}, Hartmann6, -3.322368011415515};
    for (int i = 1; i <= 6; ++i) p.ranges.push_back(range("x" + std::to_string(i), 0, 1));
    return p;
  }
  std::fprintf(stderr, "unknown function %s\n", name.c_str());
  std::exit(2);
}

// Wall and CPU time of one call. The CPU time (this thread's) is what the call costs; on a shared
// machine the wall time also holds the time the thread waited for a core.
struct Timer {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = ThreadCpuMs();

  static double ThreadCpuMs() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
  }
  double WallMs() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall)
        .count();
  }
  double CpuMs() const { return ThreadCpuMs() - cpu; }
};

std::string JsonArray(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", values[i]);
    out += (i ? "," : "") + std::string(buffer);
  }
  return out + "]";
}

// External mode: see the header comment.
int RunExternal(const std::string& ranges_path, const std::string& objective_name,
                const std::string& strategy_name, std::uint64_t seed, int trials, int parallel) {
  std::ifstream in(ranges_path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", ranges_path.c_str());
    return 2;
  }
  const nlohmann::json ranges = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (ranges.is_discarded()) {
    std::fprintf(stderr, "%s is not JSON\n", ranges_path.c_str());
    return 2;
  }
  auto space = tuning::SearchSpace::FromJson(ranges);
  if (!space.ok()) {
    std::fprintf(stderr, "%s\n", space.status().ToString().c_str());
    return 1;
  }
  if (objective_name != "Maximize" && objective_name != "Minimize") {
    std::fprintf(stderr, "unknown objective type %s\n", objective_name.c_str());
    return 2;
  }
  tuning::StrategyOptions options;
  options.type =
      strategy_name == "random" ? tuning::StrategyType::kRandom : tuning::StrategyType::kBayesian;
  options.objective = objective_name == "Maximize" ? tuning::ObjectiveType::kMaximize
                                                   : tuning::ObjectiveType::kMinimize;
  options.space = *space;
  options.random_seed = seed;
  auto created = tuning::CreateStrategy(options);
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
    return 1;
  }
  tuning::Strategy& strategy = **created;
  std::deque<tuning::TrialId> running;
  int suggested = 0;
  int ended = 0;
  while (ended < trials) {
    while (suggested < trials && static_cast<int>(running.size()) < parallel) {
      auto got = strategy.Suggest(1);
      if (!got.ok() || got->empty()) {
        std::fprintf(stderr, "Suggest failed: %s\n",
                     got.ok() ? "nothing left" : got.status().ToString().c_str());
        return 1;
      }
      const tuning::Suggestion& s = got->front();
      const nlohmann::json line = {{"trial", s.trial}, {"hyperparameters", s.hyperparameters}};
      std::cout << line.dump() << std::endl;
      running.push_back(s.trial);
      ++suggested;
    }
    std::string reply;
    if (!std::getline(std::cin, reply)) {
      std::fprintf(stderr, "no objective value for trial %lld\n",
                   static_cast<long long>(running.front()));
      return 1;
    }
    char* end = nullptr;
    const double value = std::strtod(reply.c_str(), &end);
    const bool number = end != reply.c_str() && std::isfinite(value);
    const tuning::TrialId trial = running.front();
    running.pop_front();
    const auto status = number ? strategy.Complete(trial, value) : strategy.Fail(trial);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    ++ended;
  }
  const std::optional<tuning::TrialId> best = strategy.BestTrial();
  const nlohmann::json done = {{"done", true},
                               {"best_trial", best ? nlohmann::json(*best) : nlohmann::json()}};
  std::cout << done.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string function = "branin";
  std::string strategy_name = "bayesian";
  int seeds = 20;
  int first_seed = 0;
  int trials = 100;
  int parallel = 1;
  std::string ranges_path;
  std::string objective_name = "Maximize";
  std::uint64_t external_seed = 0;
  bool trials_given = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", flag.c_str());
      return 2;
    }
    const std::string value = argv[i + 1];
    if (flag == "--function") {
      function = value;
    } else if (flag == "--strategy") {
      strategy_name = value;
    } else if (flag == "--seeds") {
      seeds = std::atoi(value.c_str());
    } else if (flag == "--first-seed") {
      first_seed = std::atoi(value.c_str());
    } else if (flag == "--trials") {
      trials = std::atoi(value.c_str());
      trials_given = true;
    } else if (flag == "--parallel") {
      parallel = std::max(1, std::atoi(value.c_str()));
    } else if (flag == "--ranges") {
      ranges_path = value;
    } else if (flag == "--objective") {
      objective_name = value;
    } else if (flag == "--seed") {
      external_seed = std::strtoull(value.c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (strategy_name != "bayesian" && strategy_name != "random") {
    std::fprintf(stderr, "unknown strategy %s\n", strategy_name.c_str());
    return 2;
  }
  if (!ranges_path.empty()) {
    return RunExternal(ranges_path, objective_name, strategy_name, external_seed,
                       trials_given ? trials : 30, parallel);
  }
  const Problem problem = MakeProblem(function);
  auto space = tuning::SearchSpace::Create(problem.ranges);
  if (!space.ok()) {
    std::fprintf(stderr, "%s\n", space.status().ToString().c_str());
    return 1;
  }

  for (int seed = first_seed; seed < first_seed + seeds; ++seed) {
    tuning::StrategyOptions options;
    options.type =
        strategy_name == "random" ? tuning::StrategyType::kRandom : tuning::StrategyType::kBayesian;
    options.space = *space;
    options.random_seed = static_cast<std::uint64_t>(seed);
    auto created = tuning::CreateStrategy(options);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    tuning::Strategy& strategy = **created;

    std::vector<double> regret;
    std::vector<double> suggest_ms;
    std::vector<double> suggest_cpu_ms;
    std::vector<double> suggest_observations;  // observations seen by each Suggest call
    std::deque<tuning::Suggestion> running;
    double best = std::numeric_limits<double>::infinity();
    int created_trials = 0;
    auto suggest = [&](int count) {
      const Timer timer;
      auto got = strategy.Suggest(count);
      suggest_ms.push_back(timer.WallMs());
      suggest_cpu_ms.push_back(timer.CpuMs());
      suggest_observations.push_back(static_cast<double>(regret.size()));
      if (!got.ok()) {
        std::fprintf(stderr, "%s\n", got.status().ToString().c_str());
        std::exit(1);
      }
      for (auto& s : *got) running.push_back(std::move(s));
      created_trials += count;
    };
    suggest(std::min(parallel, trials));
    while (static_cast<int>(regret.size()) < trials) {
      tuning::Suggestion s = std::move(running.front());
      running.pop_front();
      const double value = problem.f(s.config.values);
      if (!strategy.Complete(s.trial, value).ok()) return 1;
      best = std::min(best, value);
      regret.push_back(best - problem.minimum);
      if (created_trials < trials) suggest(1);
    }
    const Timer timer;
    auto extra = strategy.Suggest(1);
    const double final_ms = timer.WallMs();
    const double final_cpu_ms = timer.CpuMs();
    if (!extra.ok()) return 1;

    std::printf(
        "{\"function\":\"%s\",\"strategy\":\"%s\",\"parallel\":%d,\"seed\":%d,\"regret\":%s,"
        "\"suggest_ms\":%s,\"suggest_cpu_ms\":%s,\"suggest_observations\":%s,"
        "\"final_suggest_ms\":%.4f,\"final_suggest_cpu_ms\":%.4f}\n",
        function.c_str(), strategy_name.c_str(), parallel, seed, JsonArray(regret).c_str(),
        JsonArray(suggest_ms).c_str(), JsonArray(suggest_cpu_ms).c_str(),
        JsonArray(suggest_observations).c_str(), final_ms, final_cpu_ms);
    std::fflush(stdout);
  }
  return 0;
}
