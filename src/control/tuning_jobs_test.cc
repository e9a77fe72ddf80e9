#include "control/tuning_jobs.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "common/wait.h"
#include "metadata/sqlite_metadata_store.h"
#include "storage/local_object_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr char kRole[] = "arn:aws:iam::000000000000:role/SageMakerRole";
constexpr milliseconds kJobTimeout{90000};

bool IsTerminal(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Stopped";
}

// The objective the "quadratic" image reports: minimal at x = 0.3, k = 4.
double Quadratic(double x, double k) { return (x - 0.3) * (x - 0.3) + (k - 4) * (k - 4) / 100.0; }

// Prefix of every test image: reads hyperparameters.json into `hp` (all values strings).
constexpr char kScriptHead[] = R"py(#!/usr/bin/python3
import json, os, sys, time
config = os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
hp = json.load(open(os.path.join(config, "hyperparameters.json")))
)py";

// The "quadratic" image: loss = (x - 0.3)^2 + (k - 4)^2 / 100 once per epoch (Quadratic()).
constexpr char kQuadraticScript[] = R"py(
x = float(hp['x']); k = float(hp.get('k', '4'))
value = (x - 0.3) ** 2 + (k - 4) ** 2 / 100.0
for e in range(EPOCHS):
    print('epoch %d loss=%r' % (e + 1, value), flush=True)
    time.sleep(PAUSE)
)py";

// The "value" image: loss = v once per epoch. "bad..." fails as a client error, "crash" as an
// internal error, "silent..." ends without printing the objective.
constexpr char kValueScript[] = R"py(
v = hp['v']
if v.startswith('bad'):
    sys.exit(3)
if v == 'crash':
    with open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w') as f:
        f.write('InternalServerError: the host went away')
    sys.exit(1)
if v.startswith('silent'):
    sys.exit(0)
for e in range(EPOCHS):
    print('epoch %d loss=%s' % (e + 1, v), flush=True)
    time.sleep(PAUSE)
)py";

// Real components throughout: SQLite stores in a temp file, a LocalObjectStore, training hosts
// run by the real hearth-supervisor under bubblewrap, and the real TrainingJobController.
class TuningJobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-tuning-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "jobs");
    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto logs = metadata::OpenSqliteLogStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    auto objects = storage::OpenLocalObjectStore({.root = root_ / "objects"});
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(objects).value();
    ASSERT_TRUE(objects_->CreateBucket("input").ok());
    ASSERT_TRUE(objects_->CreateBucket("output").ok());
    ASSERT_TRUE(objects_->PutObject("input", "train/part-0.csv", "1,2\n").ok());
    runtime_ = std::make_unique<runtime::HostProcessRuntime>(
        runtime::HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH});
    images_ = std::make_unique<ImageRegistry>(
        *store_,
        std::map<std::string, BuiltinImage>{
            {"kmeans",
             {.repositories = {"kmeans"}, .metric_definitions = {{"test:msd", "msd=(\\S+)"}}}}});
    StartControllers();
  }

  void TearDown() override {
    // Leave nothing running: stop unfinished tuning jobs (which stop their children), then
    // any training job still going.
    if (tuning_ != nullptr) {
      auto all = store_->List(HyperParameterTuningJobController::kKind);
      if (all.ok()) {
        for (const auto& r : *all) {
          if (IsTerminal(r.status)) continue;
          tuning_->Stop({{"HyperParameterTuningJobName", r.name}}).status().IgnoreError();
          WaitForTuning(r.name);
        }
      }
    }
    if (training_ != nullptr) {
      auto all = store_->List(TrainingJobController::kKind);
      if (all.ok()) {
        for (const auto& r : *all) {
          if (IsTerminal(r.status)) continue;
          training_->Stop({{"TrainingJobName", r.name}}).status().IgnoreError();
          WaitFor([&] {
            auto d = store_->Get(TrainingJobController::kKind, r.name);
            return d.ok() && IsTerminal(d->status);
          });
        }
      }
    }
    StopControllers();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void StartControllers() {
    TrainingJobOptions t;
    t.jobs_dir = root_ / "jobs";
    t.hearth_binary = "/bin/false";
    t.stop_grace = milliseconds(2000);
    t.poll_interval = milliseconds(20);
    t.num_cpus = 1;
    t.max_running_instances = max_running_instances_;
    training_ =
        std::make_unique<TrainingJobController>(t, *store_, *logs_, *objects_, *runtime_, *images_);
    TuningJobOptions o;
    o.poll_interval = milliseconds(20);
    o.max_parallel_training_jobs = 10;
    o.early_stopping_min_peers = 2;
    tuning_ = std::make_unique<HyperParameterTuningJobController>(o, *store_, *logs_, *images_,
                                                                  *training_);
  }

  // As the server does on exit: the tuning controller goes first (it uses the training one).
  void StopControllers() {
    tuning_.reset();
    training_.reset();
  }

  // Registers a bring-your-own image whose `train` is kScriptHead followed by `body`.
  std::string Image(const std::string& name, const std::string& body) {
    fs::path dir = root_ / "images" / name;
    fs::create_directories(dir);
    std::ofstream(dir / "train") << kScriptHead << body << "\n";
    chmod((dir / "train").c_str(), 0755);
    Status s = images_->RegisterDirectory("test/" + name, dir);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return "test/" + name;
  }

  // kQuadraticScript for `epochs` epochs, `pause` seconds apart.
  std::string QuadraticImage(int epochs = 1, double pause = 0) {
    return Image("quadratic" + std::to_string(epochs), WithEpochs(kQuadraticScript, epochs, pause));
  }

  // kValueScript for `epochs` epochs, `pause` seconds apart.
  std::string ValueImage(int epochs = 1, double pause = 0) {
    return Image("value" + std::to_string(epochs), WithEpochs(kValueScript, epochs, pause));
  }

  // `script` with EPOCHS and PAUSE replaced.
  static std::string WithEpochs(std::string script, int epochs, double pause) {
    script.replace(script.find("EPOCHS"), 6, std::to_string(epochs));
    script.replace(script.find("PAUSE"), 5, std::to_string(pause));
    return script;
  }

  static json Definition(const std::string& image) {
    return {{"StaticHyperParameters", {{"static_a", "7"}}},
            {"AlgorithmSpecification",
             {{"TrainingImage", image},
              {"TrainingInputMode", "File"},
              {"MetricDefinitions", json::array({{{"Name", "loss"}, {"Regex", "loss=(\\S+)"}}})}}},
            {"RoleArn", kRole},
            {"InputDataConfig",
             json::array({{{"ChannelName", "train"},
                           {"DataSource",
                            {{"S3DataSource",
                              {{"S3DataType", "S3Prefix"}, {"S3Uri", "s3://input/train/"}}}}}}})},
            {"OutputDataConfig", {{"S3OutputPath", "s3://output/tuning"}}},
            {"ResourceConfig",
             {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}, {"VolumeSizeInGB", 1}}},
            {"StoppingCondition", {{"MaxRuntimeInSeconds", 120}}}};
  }

  static json Request(const std::string& name, const std::string& image,
                      const std::string& strategy, const json& ranges, int max_jobs, int parallel,
                      const std::string& type = "Minimize") {
    json config = {{"Strategy", strategy},
                   {"HyperParameterTuningJobObjective", {{"Type", type}, {"MetricName", "loss"}}},
                   {"ResourceLimits", {{"MaxParallelTrainingJobs", parallel}}},
                   {"ParameterRanges", ranges}};
    if (max_jobs > 0) config["ResourceLimits"]["MaxNumberOfTrainingJobs"] = max_jobs;
    return {{"HyperParameterTuningJobName", name},
            {"HyperParameterTuningJobConfig", config},
            {"TrainingJobDefinition", Definition(image)}};
  }

  static json XRange(double lo = 0, double hi = 1) {
    return {{"ContinuousParameterRanges", json::array({{{"Name", "x"},
                                                        {"MinValue", std::to_string(lo)},
                                                        {"MaxValue", std::to_string(hi)}}})},
            {"IntegerParameterRanges",
             json::array({{{"Name", "k"}, {"MinValue", "1"}, {"MaxValue", "8"}}})}};
  }

  static json Values(const std::vector<std::string>& values) {
    return {{"CategoricalParameterRanges", json::array({{{"Name", "v"}, {"Values", values}}})}};
  }

  json Describe(const std::string& name) {
    Result<json> doc = tuning_->Describe({{"HyperParameterTuningJobName", name}});
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json::object();
  }

  // Polls Describe until the tuning job ends; `each` sees every document on the way.
  json WaitForTuning(const std::string& name,
                     const std::function<void(const json&)>& each = nullptr) {
    json doc;
    bool done = WaitFor(
        [&] {
          doc = Describe(name);
          if (each) each(doc);
          return IsTerminal(doc.value("HyperParameterTuningJobStatus", ""));
        },
        kJobTimeout, milliseconds(20));
    EXPECT_TRUE(done) << "tuning job " << name << " did not end: " << doc.dump(2);
    return doc;
  }

  std::vector<json> Children(const std::string& name, json request = json::object()) {
    request["HyperParameterTuningJobName"] = name;
    request["MaxResults"] = 100;
    Result<json> listed = tuning_->ListTrainingJobs(request);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    if (!listed.ok()) return {};
    return (*listed)["TrainingJobSummaries"].get<std::vector<json>>();
  }

  static std::vector<std::string> Names(const std::vector<json>& summaries) {
    std::vector<std::string> out;
    for (const json& s : summaries) out.push_back(s.value("TrainingJobName", ""));
    return out;
  }

  json TrainingDoc(const std::string& child) {
    Result<json> doc = training_->Describe({{"TrainingJobName", child}});
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json::object();
  }

  // Every training job in the store that the tuning job `name` launched.
  std::vector<json> TrainingJobsOf(const std::string& name) {
    std::vector<json> out;
    auto all = store_->List(TrainingJobController::kKind);
    EXPECT_TRUE(all.ok());
    if (!all.ok()) return out;
    for (const auto& r : *all) {
      if (r.doc.value("TuningJobArn", "") ==
          "arn:aws:sagemaker:us-east-1:000000000000:hyper-parameter-tuning-job/" + name) {
        out.push_back(r.doc);
      }
    }
    return out;
  }

  // The most children that were ever between creation and end at the same moment.
  static int MaxOverlap(const std::vector<json>& docs) {
    std::vector<std::pair<double, int>> edges;
    for (const json& d : docs) {
      edges.push_back({d["CreationTime"].get<double>(), +1});
      edges.push_back({d["TrainingEndTime"].get<double>(), -1});
    }
    // An end and a start at the same instant do not overlap: ends first.
    std::sort(edges.begin(), edges.end());
    int now = 0, most = 0;
    for (const auto& [at, delta] : edges) most = std::max(most, now += delta);
    return most;
  }

  void ExpectCreateRejected(const json& request, StatusCode code, const std::string& reason,
                            const std::string& text) {
    Result<json> created = tuning_->Create(request);
    ASSERT_FALSE(created.ok()) << "accepted: " << request.dump();
    EXPECT_EQ(created.status().code(), code) << created.status().ToString();
    EXPECT_EQ(created.status().reason(), reason) << created.status().ToString();
    EXPECT_NE(created.status().message().find(text), std::string::npos)
        << "'" << text << "' not in: " << created.status().message();
    auto stored = store_->List(HyperParameterTuningJobController::kKind);
    ASSERT_TRUE(stored.ok());
    for (const auto& r : *stored) {
      EXPECT_NE(r.name, request.value("HyperParameterTuningJobName", "")) << "stored anyway";
    }
  }

  int max_running_instances_ = 64;
  fs::path root_;
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<metadata::LogStore> logs_;
  std::unique_ptr<storage::ObjectStore> objects_;
  std::unique_ptr<runtime::HostProcessRuntime> runtime_;
  std::unique_ptr<ImageRegistry> images_;
  std::unique_ptr<TrainingJobController> training_;
  std::unique_ptr<HyperParameterTuningJobController> tuning_;
};

// --- Create: validation ------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, CreateRejectsWhatTheServiceModelCannotExpress) {
  const std::string image = QuadraticImage();
  json both = Request("both", image, "Random", XRange(), 2, 1);
  both["TrainingJobDefinitions"] = json::array({Definition(image)});
  ExpectCreateRejected(both, StatusCode::kInvalidArgument, "ValidationException",
                       "Exactly one of TrainingJobDefinition and TrainingJobDefinitions");

  json no_objective = Request("no-objective", image, "Random", XRange(), 2, 1);
  no_objective["HyperParameterTuningJobConfig"].erase("HyperParameterTuningJobObjective");
  ExpectCreateRejected(no_objective, StatusCode::kInvalidArgument, "ValidationException",
                       "hyperParameterTuningJobConfig.hyperParameterTuningJobObjective");

  json unknown_metric = Request("unknown-metric", image, "Random", XRange(), 2, 1);
  unknown_metric["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
                ["MetricName"] = "accuracy";
  ExpectCreateRejected(unknown_metric, StatusCode::kInvalidArgument, "ValidationException",
                       "The objective metric 'accuracy' is not one of the metrics");

  json builtin_metric = Request("builtin-metric", "hearth/kmeans", "Random", XRange(), 2, 1);
  builtin_metric["TrainingJobDefinition"]["AlgorithmSpecification"].erase("MetricDefinitions");
  ExpectCreateRejected(builtin_metric, StatusCode::kInvalidArgument, "ValidationException",
                       "(the algorithm's: test:msd)");

  json overlap = Request("overlap", image, "Random", XRange(), 2, 1);
  overlap["TrainingJobDefinition"]["StaticHyperParameters"]["x"] = "0.5";
  ExpectCreateRejected(overlap, StatusCode::kInvalidArgument, "ValidationException",
                       "Hyperparameter 'x' of trainingJobDefinition is both static");

  json hyperband_auto = Request("hyperband-auto", image, "Hyperband", XRange(), 2, 1);
  hyperband_auto["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto";
  hyperband_auto["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "9";
  ExpectCreateRejected(hyperband_auto, StatusCode::kInvalidArgument, "ValidationException",
                       "Member must be Off when Strategy is Hyperband");

  ExpectCreateRejected(Request("grid-continuous", image, "Grid", XRange(), 0, 1),
                       StatusCode::kInvalidArgument, "ValidationException",
                       "The Grid strategy supports only CategoricalParameterRanges");

  json unknown_image = Request("unknown-image", "no/such-image", "Random", XRange(), 2, 1);
  ExpectCreateRejected(unknown_image, StatusCode::kInvalidArgument, "ValidationException",
                       "trainingJobDefinition.algorithmSpecification.trainingImage");

  ExpectCreateRejected(Request("too-parallel", image, "Random", XRange(), 20, 11),
                       StatusCode::kResourceExhausted, "ResourceLimitExceeded",
                       "'Number of parallel training jobs per tuning job' is 10 Jobs");
  ExpectCreateRejected(Request("too-many", image, "Bayesian", XRange(), 751, 1),
                       StatusCode::kResourceExhausted, "ResourceLimitExceeded",
                       "'Number of training jobs per tuning job' is 750 Jobs");

  json missing_parent = Request("missing-parent", image, "Bayesian", XRange(), 2, 1);
  missing_parent["WarmStartConfig"] = {
      {"ParentHyperParameterTuningJobs", json::array({{{"HyperParameterTuningJobName", "nope"}}})},
      {"WarmStartType", "TransferLearning"}};
  ExpectCreateRejected(missing_parent, StatusCode::kInvalidArgument, "ValidationException",
                       "The parent hyperparameter tuning job nope of WarmStartConfig does not "
                       "exist.");
  // Nothing above started a training job.
  auto jobs = store_->List(TrainingJobController::kKind);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
}

TEST_F(TuningJobControllerTest, NamesAreUniqueWithoutCaseAndUnknownJobsAreResourceNotFound) {
  const std::string image = ValueImage();
  ASSERT_TRUE(tuning_->Create(Request("Unique", image, "Grid", Values({"1"}), 0, 1)).ok());
  ExpectCreateRejected(Request("unique", image, "Grid", Values({"1"}), 0, 1),
                       StatusCode::kAlreadyExists, "ResourceInUse",
                       "a hyperparameter tuning job with this name already exists");
  EXPECT_EQ(WaitForTuning("UNIQUE")["HyperParameterTuningJobStatus"], "Completed");
  for (auto op : {&HyperParameterTuningJobController::Describe,
                  &HyperParameterTuningJobController::ListTrainingJobs,
                  &HyperParameterTuningJobController::Stop}) {
    Result<json> answer = ((*tuning_).*op)({{"HyperParameterTuningJobName", "missing"}});
    ASSERT_FALSE(answer.ok());
    EXPECT_EQ(answer.status().reason(), "ResourceNotFound");
    EXPECT_EQ(answer.status().message(),
              "Amazon SageMaker can't find a tuning job with name missing");
  }
}

// --- Running ----------------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, RandomSearchRunsItsChildrenWithinTheLimitsAndFindsTheBest) {
  const std::string image = QuadraticImage(2, 0.3);
  Result<json> created = tuning_->Create(Request("quad", image, "Random", XRange(), 6, 2));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["HyperParameterTuningJobArn"],
            "arn:aws:sagemaker:us-east-1:000000000000:hyper-parameter-tuning-job/quad");
  int most_in_progress = 0;
  json doc = WaitForTuning("quad", [&](const json& d) {
    most_in_progress =
        std::max(most_in_progress, d["TrainingJobStatusCounters"].value("InProgress", 0));
  });
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  EXPECT_GE(most_in_progress, 1);
  EXPECT_LE(most_in_progress, 2);
  EXPECT_EQ(doc["TrainingJobStatusCounters"], json({{"Completed", 6},
                                                    {"InProgress", 0},
                                                    {"RetryableError", 0},
                                                    {"NonRetryableError", 0},
                                                    {"Stopped", 0}}));
  EXPECT_EQ(doc["ObjectiveStatusCounters"],
            json({{"Succeeded", 6}, {"Pending", 0}, {"Failed", 0}}));
  EXPECT_TRUE(doc["HyperParameterTuningJobConfig"]["RandomSeed"].is_number_integer());
  EXPECT_EQ(doc["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"], "Off");
  EXPECT_EQ(doc["TrainingJobDefinition"]["StaticHyperParameters"]["_tuning_objective_metric"],
            "loss");
  EXPECT_GE(doc["HyperParameterTuningEndTime"].get<double>(), doc["CreationTime"].get<double>());

  // Never more than MaxParallelTrainingJobs children alive at once.
  std::vector<json> docs = TrainingJobsOf("quad");
  ASSERT_EQ(docs.size(), 6u);
  EXPECT_LE(MaxOverlap(docs), 2);

  // Each child: its name, its hyperparameters, TuningJobArn, and the objective the script
  // computed from what it was given.
  std::vector<json> children = Children("quad");
  ASSERT_EQ(children.size(), 6u);
  const std::regex pattern("quad-00[1-6]-[0-9a-f]{8}");
  double best = 1e9;
  std::string best_name;
  for (const json& s : children) {
    const std::string child = s["TrainingJobName"];
    EXPECT_TRUE(std::regex_match(child, pattern)) << child;
    EXPECT_EQ(s["TrainingJobStatus"], "Completed");
    EXPECT_EQ(s["ObjectiveStatus"], "Succeeded");
    EXPECT_EQ(s["TuningJobName"], "quad");
    const double x = std::stod(s["TunedHyperParameters"]["x"].get<std::string>());
    const double k = std::stod(s["TunedHyperParameters"]["k"].get<std::string>());
    EXPECT_GE(x, 0.0);
    EXPECT_LE(x, 1.0);
    EXPECT_EQ(k, std::round(k));
    const double value = s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>();
    EXPECT_NEAR(value, Quadratic(x, k), 1e-9) << s.dump();
    EXPECT_EQ(s["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"], "loss");
    if (value < best) best = value, best_name = child;

    json training = TrainingDoc(child);
    EXPECT_EQ(training["TuningJobArn"], (*created)["HyperParameterTuningJobArn"]);
    EXPECT_EQ(training["HyperParameters"]["_tuning_objective_metric"], "loss");
    EXPECT_EQ(training["HyperParameters"]["static_a"], "7");
    EXPECT_EQ(training["HyperParameters"]["x"], s["TunedHyperParameters"]["x"]);
  }
  EXPECT_EQ(doc["BestTrainingJob"]["TrainingJobName"], best_name);
  EXPECT_DOUBLE_EQ(
      doc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(),
      best);
  // An ended job keeps no monitor thread (it forgets itself just after the last write).
  EXPECT_TRUE(WaitFor([&] { return tuning_->MonitoredJobs() == 0; }));
}

TEST_F(TuningJobControllerTest, GridRunsEveryCombinationOnce) {
  const std::string image = ValueImage();
  json ranges = {
      {"CategoricalParameterRanges", json::array({{{"Name", "v"}, {"Values", {"1", "2", "3"}}},
                                                  {{"Name", "w"}, {"Values", {"a", "b"}}}})}};
  ASSERT_TRUE(tuning_->Create(Request("grid", image, "Grid", ranges, 0, 3)).ok());
  json doc = WaitForTuning("grid");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  std::set<std::pair<std::string, std::string>> combos;
  for (const json& s : Children("grid")) {
    combos.insert(std::make_pair(s["TunedHyperParameters"]["v"].get<std::string>(),
                                 s["TunedHyperParameters"]["w"].get<std::string>()));
  }
  EXPECT_EQ(combos.size(), 6u);
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Completed"], 6);
  EXPECT_EQ(doc["BestTrainingJob"]["TunedHyperParameters"]["v"], "1");
}

TEST_F(TuningJobControllerTest, MaximizeKeepsTheHighestAndBayesianCompletes) {
  const std::string image = QuadraticImage();
  ASSERT_TRUE(
      tuning_->Create(Request("bayes", image, "Bayesian", XRange(), 5, 2, "Maximize")).ok());
  json doc = WaitForTuning("bayes");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  double highest = -1;
  for (const json& s : Children("bayes")) {
    highest =
        std::max(highest, s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>());
  }
  EXPECT_DOUBLE_EQ(
      doc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(),
      highest);
  EXPECT_EQ(doc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Type"],
            "Maximize");
}

TEST_F(TuningJobControllerTest, FailuresAreCountedAsRetryableOrNot) {
  const std::string image = ValueImage();
  ASSERT_TRUE(tuning_
                  ->Create(Request("failures", image, "Grid",
                                   Values({"2", "bad", "crash", "silent", "1"}), 0, 1))
                  .ok());
  json doc = WaitForTuning("failures");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  EXPECT_EQ(doc["TrainingJobStatusCounters"], json({{"Completed", 3},
                                                    {"InProgress", 0},
                                                    {"RetryableError", 1},
                                                    {"NonRetryableError", 1},
                                                    {"Stopped", 0}}));
  EXPECT_EQ(doc["ObjectiveStatusCounters"],
            json({{"Succeeded", 2}, {"Pending", 0}, {"Failed", 3}}));
  EXPECT_EQ(doc["BestTrainingJob"]["TunedHyperParameters"]["v"], "1");
  for (const json& s : Children("failures")) {
    const std::string v = s["TunedHyperParameters"]["v"];
    if (v == "crash") {
      EXPECT_EQ(s["FailureReason"], "InternalServerError: the host went away");
    }
    if (v == "bad" || v == "crash" || v == "silent") {
      EXPECT_EQ(s["ObjectiveStatus"], "Failed") << v;
      EXPECT_FALSE(s.contains("FinalHyperParameterTuningJobObjectiveMetric")) << v;
    }
  }
}

TEST_F(TuningJobControllerTest, AJobWhoseChildrenNeverReportTheObjectiveFails) {
  const std::string image = ValueImage();
  ASSERT_TRUE(tuning_
                  ->Create(Request("all-bad", image, "Grid",
                                   Values({"silent", "silent2", "silent3"}), 0, 1))
                  .ok());
  json doc = WaitForTuning("all-bad");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Failed") << doc.dump(2);
  EXPECT_NE(doc["FailureReason"].get<std::string>().find("No training job reported the "
                                                         "objective metric"),
            std::string::npos)
      << doc["FailureReason"];
}

TEST_F(TuningJobControllerTest, ClientErrorsFailTheJobBeforeItLaunchesEverything) {
  const std::string image = ValueImage();
  ASSERT_TRUE(tuning_
                  ->Create(Request("fail-fast", image, "Grid",
                                   Values({"bad1", "bad2", "bad3", "bad4", "bad5"}), 0, 1))
                  .ok());
  json doc = WaitForTuning("fail-fast");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Failed") << doc.dump(2);
  EXPECT_NE(doc["FailureReason"].get<std::string>().find(
                "The first 3 training jobs failed with non-retryable errors"),
            std::string::npos)
      << doc["FailureReason"];
  EXPECT_EQ(TrainingJobsOf("fail-fast").size(), 3u);
}

// --- Stop and completion criteria --------------------------------------------------------------

TEST_F(TuningJobControllerTest, StopStopsTheRunningChildrenAndEndsStopped) {
  const std::string image = ValueImage(600, 0.1);  // a minute of epochs: it must be stopped
  ASSERT_TRUE(
      tuning_->Create(Request("stop-me", image, "Grid", Values({"1", "2", "3"}), 0, 2)).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return Describe("stop-me")["ObjectiveStatusCounters"].value("Pending", 0) == 2 &&
               TrainingJobsOf("stop-me").size() == 2;
      },
      kJobTimeout));
  ASSERT_TRUE(tuning_->Stop({{"HyperParameterTuningJobName", "stop-me"}}).ok());
  ASSERT_TRUE(tuning_->Stop({{"HyperParameterTuningJobName", "stop-me"}}).ok());  // still fine
  json doc = WaitForTuning("stop-me");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Stopped") << doc.dump(2);
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Stopped"], 2);
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["InProgress"], 0);
  for (const json& d : TrainingJobsOf("stop-me")) EXPECT_EQ(d["TrainingJobStatus"], "Stopped");
  EXPECT_EQ(TrainingJobsOf("stop-me").size(), 2u);  // the third was never launched
  Result<json> again = tuning_->Stop({{"HyperParameterTuningJobName", "stop-me"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().reason(), "ValidationException");
  EXPECT_NE(again.status().message().find("in status Stopped"), std::string::npos);
  auto history = store_->History(HyperParameterTuningJobController::kKind, "stop-me");
  ASSERT_TRUE(history.ok());
  std::vector<std::string> statuses;
  for (const auto& t : *history) statuses.push_back(t.status);
  EXPECT_EQ(statuses, (std::vector<std::string>{"InProgress", "Stopping", "Stopped"}));
}

TEST_F(TuningJobControllerTest, TargetObjectiveMetricValueCompletesTheJob) {
  const std::string image = ValueImage();
  json request = Request("target", image, "Grid", Values({"5", "1.5", "0.5", "7"}), 0, 1);
  request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = {
      {"TargetObjectiveMetricValue", 2.0}};
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("target");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  // Grid order: 5 then 1.5, which reaches the target; nothing after it is launched.
  EXPECT_EQ(TrainingJobsOf("target").size(), 2u);
  EXPECT_EQ(doc["BestTrainingJob"]["TunedHyperParameters"]["v"], "1.5");
  auto history = store_->History(HyperParameterTuningJobController::kKind, "target");
  ASSERT_TRUE(history.ok());
  EXPECT_NE(history->back().message.find("TargetObjectiveMetricValue 2"), std::string::npos)
      << history->back().message;
}

TEST_F(TuningJobControllerTest, BestObjectiveNotImprovingCompletesTheJob) {
  const std::string image = ValueImage();
  json request =
      Request("plateau", image, "Grid", Values({"1", "0.995", "5", "6", "0.1", "0.2"}), 0, 1);
  request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = {
      {"BestObjectiveNotImproving", {{"MaxNumberOfTrainingJobsNotImproving", 3}}}};
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("plateau");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  // 0.995 improves on 1 by less than 1%: it counts as not improving, then 5 and 6.
  EXPECT_EQ(TrainingJobsOf("plateau").size(), 4u);
  EXPECT_EQ(doc["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"], 3);
  EXPECT_EQ(doc["BestTrainingJob"]["TunedHyperParameters"]["v"], "0.995");
}

TEST_F(TuningJobControllerTest, ConvergenceDetectedCompletesTheJobWhenAskedTo) {
  const std::string image = ValueImage();
  json request =
      Request("converge", image, "Grid", Values({"1", "2", "3", "4", "5", "6", "7"}), 0, 1);
  request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = {
      {"ConvergenceDetected", {{"CompleteOnConvergence", "Enabled"}}}};
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("converge");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  // Five children in a row without an improvement (the least Hearth calls convergence).
  EXPECT_EQ(TrainingJobsOf("converge").size(), 6u);
  EXPECT_TRUE(doc["TuningJobCompletionDetails"].contains("ConvergenceDetectedTime"));
  EXPECT_EQ(doc["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"], 5);
}

TEST_F(TuningJobControllerTest, MaxRuntimeInSecondsStopsTheChildrenAndCompletes) {
  // The service model's minimum (120 s) is checked before the controller; the controller
  // itself takes any limit, which keeps this test short.
  const std::string image = ValueImage(600, 0.1);
  json request = Request("runtime", image, "Grid", Values({"1", "2", "3"}), 0, 1);
  request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 1;
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("runtime");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  EXPECT_GE(doc["HyperParameterTuningEndTime"].get<double>() - doc["CreationTime"].get<double>(),
            1.0);
  std::vector<json> children = TrainingJobsOf("runtime");
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0]["TrainingJobStatus"], "Stopped");
  auto history = store_->History(HyperParameterTuningJobController::kKind, "runtime");
  ASSERT_TRUE(history.ok());
  EXPECT_NE(history->back().message.find("MaxRuntimeInSeconds"), std::string::npos)
      << history->back().message;
}

// --- Early stopping and Hyperband ---------------------------------------------------------------

TEST_F(TuningJobControllerTest, EarlyStoppingAutoStopsAChildBehindTheMedian) {
  const std::string image = ValueImage(10, 0.15);
  json request = Request("median", image, "Grid", Values({"1", "2", "9", "1.5"}), 0, 1);
  request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto";
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("median");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  // With two earlier children at 1 and 2, the one at 9 is worse than their median at its
  // first epoch: the median rule stops it; 1.5 is not worse than the median of 1, 2 and 9.
  for (const json& s : Children("median")) {
    const std::string v = s["TunedHyperParameters"]["v"];
    EXPECT_EQ(s["TrainingJobStatus"], v == "9" ? "Stopped" : "Completed") << v;
    EXPECT_EQ(s["ObjectiveStatus"], "Succeeded") << v;
    if (v == "9") {
      auto points =
          logs_->Metrics(TrainingJobController::kKind, s["TrainingJobName"].get<std::string>());
      ASSERT_TRUE(points.ok());
      EXPECT_LT(points->size(), 10u);
    }
  }
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Stopped"], 1);
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Completed"], 3);
  EXPECT_EQ(doc["BestTrainingJob"]["TunedHyperParameters"]["v"], "1");
}

TEST_F(TuningJobControllerTest, HyperbandStopsChildrenByItsRungsAndAtMaxResource) {
  // 30 epochs printed, MaxResource 9: no child may run its course.
  const std::string image = QuadraticImage(30, 0.1);
  json request = Request("hyperband", image, "Hyperband", XRange(), 4, 2);
  request["HyperParameterTuningJobConfig"]["StrategyConfig"] = {
      {"HyperbandStrategyConfig", {{"MinResource", 1}, {"MaxResource", 9}}}};
  ASSERT_TRUE(tuning_->Create(request).ok());
  json doc = WaitForTuning("hyperband");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  std::vector<json> children = Children("hyperband");
  ASSERT_EQ(children.size(), 4u);
  for (const json& s : children) {
    EXPECT_EQ(s["TrainingJobStatus"], "Stopped") << s.dump();
    EXPECT_EQ(s["ObjectiveStatus"], "Succeeded") << s.dump();
    auto points =
        logs_->Metrics(TrainingJobController::kKind, s["TrainingJobName"].get<std::string>());
    ASSERT_TRUE(points.ok());
    EXPECT_LT(points->size(), 30u) << s["TrainingJobName"];
  }
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Stopped"], 4);
}

// --- Warm start ----------------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, WarmStartLearnsFromItsParentAndReportsTheOverallBest) {
  const std::string image = QuadraticImage();
  ASSERT_TRUE(tuning_->Create(Request("parent", image, "Random", XRange(0, 0.5), 3, 3)).ok());
  json parent = WaitForTuning("parent");
  ASSERT_EQ(parent["HyperParameterTuningJobStatus"], "Completed") << parent.dump(2);

  json child = Request("child", image, "Bayesian", XRange(0.8, 1.0), 2, 1);
  child["WarmStartConfig"] = {{"ParentHyperParameterTuningJobs",
                               json::array({{{"HyperParameterTuningJobName", "parent"}}})},
                              {"WarmStartType", "IdenticalDataAndAlgorithm"}};

  json other_metric = child;
  other_metric["HyperParameterTuningJobName"] = "other-metric";
  other_metric["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"] =
      "Maximize";
  ExpectCreateRejected(other_metric, StatusCode::kInvalidArgument, "ValidationException",
                       "The objective of a warm start must be the same as its parents'");
  json other_image = child;
  other_image["HyperParameterTuningJobName"] = "other-image";
  other_image["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] = ValueImage();
  ExpectCreateRejected(other_image, StatusCode::kInvalidArgument, "ValidationException",
                       "IdenticalDataAndAlgorithm needs the training image and input data");
  json other_count = child;
  other_count["HyperParameterTuningJobName"] = "other-count";
  other_count["TrainingJobDefinition"]["StaticHyperParameters"]["extra"] = "1";
  ExpectCreateRejected(other_count, StatusCode::kInvalidArgument, "ValidationException",
                       "number of static plus tunable hyperparameters");

  ASSERT_TRUE(tuning_->Create(child).ok());
  json doc = WaitForTuning("child");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  // The parent's three results are the strategy's prior observations.
  auto record = store_->Get(HyperParameterTuningJobController::kKind, "child");
  ASSERT_TRUE(record.ok());
  ASSERT_EQ(record->internal["priors"].size(), 3u);
  EXPECT_EQ(record->internal["priors"][0]["hps"]["static_a"], "7");
  // x in [0.8, 1] is at least 0.25 from the optimum; the parent's x <= 0.5 is within 0.09.
  EXPECT_EQ(doc["WarmStartConfig"]["WarmStartType"], "IdenticalDataAndAlgorithm");
  EXPECT_NE(doc["BestTrainingJob"]["TrainingJobName"],
            parent["BestTrainingJob"]["TrainingJobName"]);
  EXPECT_EQ(doc["OverallBestTrainingJob"]["TrainingJobName"],
            parent["BestTrainingJob"]["TrainingJobName"]);
  for (const json& s : Children("child")) {
    EXPECT_GE(std::stod(s["TunedHyperParameters"]["x"].get<std::string>()), 0.8);
  }
}

// --- Several definitions
// --------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, TrainingJobDefinitionsShareTheChildrenBetweenAlgorithms) {
  json request = Request("multi", "", "Random", json(), 4, 2);
  request["HyperParameterTuningJobConfig"].erase("ParameterRanges");
  request["HyperParameterTuningJobConfig"].erase("HyperParameterTuningJobObjective");
  request.erase("TrainingJobDefinition");
  json quad = Definition(QuadraticImage());
  quad["DefinitionName"] = "quad";
  quad["TuningObjective"] = {{"Type", "Minimize"}, {"MetricName", "loss"}};
  quad["HyperParameterRanges"] = XRange();
  json value = Definition(ValueImage());
  value["DefinitionName"] = "value";
  value["TuningObjective"] = {{"Type", "Minimize"}, {"MetricName", "loss"}};
  value["HyperParameterRanges"] = Values({"0.0001", "3"});
  request["TrainingJobDefinitions"] = json::array({quad, value});
  Result<json> created = tuning_->Create(request);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  json doc = WaitForTuning("multi");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  std::map<std::string, int> per_definition;
  for (const json& s : Children("multi")) ++per_definition[s["TrainingJobDefinitionName"]];
  EXPECT_EQ(per_definition, (std::map<std::string, int>{{"quad", 2}, {"value", 2}}));
}

// --- Listing ------------------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, ListTrainingJobsSortsFiltersAndPages) {
  const std::string image = ValueImage();
  ASSERT_TRUE(tuning_
                  ->Create(Request("listing", image, "Grid",
                                   Values({"3", "1", "silent", "2", "bad"}), 0, 1))
                  .ok());
  ASSERT_EQ(WaitForTuning("listing")["HyperParameterTuningJobStatus"], "Completed");
  auto values = [](const std::vector<json>& summaries) {
    std::vector<std::string> out;
    for (const json& s : summaries) out.push_back(s["TunedHyperParameters"]["v"]);
    return out;
  };
  // Default: by name, ascending (children are numbered in launch order).
  EXPECT_EQ(values(Children("listing")),
            (std::vector<std::string>{"3", "1", "silent", "2", "bad"}));
  EXPECT_EQ(values(Children("listing", {{"SortBy", "FinalObjectiveMetricValue"}})),
            (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(values(Children(
                "listing", {{"SortBy", "FinalObjectiveMetricValue"}, {"SortOrder", "Descending"}})),
            (std::vector<std::string>{"3", "2", "1"}));
  EXPECT_EQ(values(Children("listing", {{"SortBy", "Status"}})),
            (std::vector<std::string>{"3", "1", "silent", "2", "bad"}));  // Completed < Failed
  EXPECT_EQ(values(Children("listing", {{"SortBy", "CreationTime"}, {"SortOrder", "Descending"}})),
            (std::vector<std::string>{"bad", "2", "silent", "1", "3"}));
  EXPECT_EQ(values(Children("listing", {{"StatusEquals", "Failed"}})),
            (std::vector<std::string>{"bad"}));

  std::vector<std::string> paged;
  json request = {{"HyperParameterTuningJobName", "listing"}, {"MaxResults", 2}};
  for (int pages = 0; pages < 10; ++pages) {
    Result<json> page = tuning_->ListTrainingJobs(request);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE((*page)["TrainingJobSummaries"].size(), 2u);
    for (const json& s : (*page)["TrainingJobSummaries"])
      paged.push_back(s["TunedHyperParameters"]["v"]);
    if (!page->contains("NextToken")) break;
    request["NextToken"] = (*page)["NextToken"];
  }
  EXPECT_EQ(paged, (std::vector<std::string>{"3", "1", "silent", "2", "bad"}));
  Result<json> bad_token = tuning_->ListTrainingJobs(
      {{"HyperParameterTuningJobName", "listing"}, {"NextToken", "garbage"}});
  ASSERT_FALSE(bad_token.ok());
  EXPECT_EQ(bad_token.status().reason(), "ValidationException");
}

TEST_F(TuningJobControllerTest, ListTuningJobsFiltersSortsAndPages) {
  const std::string image = ValueImage();
  for (const char* name : {"list-b", "list-a", "other-c"}) {
    ASSERT_TRUE(tuning_->Create(Request(name, image, "Grid", Values({"1"}), 0, 1)).ok());
    WaitForTuning(name);
  }
  auto names = [&](const json& request) {
    Result<json> listed = tuning_->List(request);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    std::vector<std::string> out;
    for (const json& s : (*listed)["HyperParameterTuningJobSummaries"]) {
      out.push_back(s["HyperParameterTuningJobName"]);
      EXPECT_EQ(s["Strategy"], "Grid");
      EXPECT_EQ(s["TrainingJobStatusCounters"]["Completed"], 1);
      EXPECT_EQ(s["ResourceLimits"]["MaxParallelTrainingJobs"], 1);
    }
    return out;
  };
  EXPECT_EQ(names(json::object()), (std::vector<std::string>{"list-a", "list-b", "other-c"}));
  EXPECT_EQ(names({{"SortBy", "CreationTime"}, {"SortOrder", "Descending"}}),
            (std::vector<std::string>{"other-c", "list-a", "list-b"}));
  EXPECT_EQ(names({{"NameContains", "LIST"}}), (std::vector<std::string>{"list-a", "list-b"}));
  EXPECT_EQ(names({{"StatusEquals", "InProgress"}}), std::vector<std::string>{});
  Result<json> first = tuning_->List({{"MaxResults", 2}});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->contains("NextToken"));
  EXPECT_EQ(names({{"MaxResults", 2}, {"NextToken", (*first)["NextToken"]}}),
            std::vector<std::string>{"other-c"});
}

// --- Restart
// ---------------------------------------------------------------------------------------

TEST_F(TuningJobControllerTest, RestartKeepsFinishedTrialsAndLaunchesNoDuplicates) {
  // One training instance at a time: the second child of each pair waits, recorded but not yet
  // created, which is the moment a crash must not duplicate or lose.
  StopControllers();
  max_running_instances_ = 1;
  StartControllers();
  const std::string image = QuadraticImage(3, 0.3);
  ASSERT_TRUE(tuning_->Create(Request("restart", image, "Bayesian", XRange(), 4, 2)).ok());
  json before;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = store_->Get(HyperParameterTuningJobController::kKind, "restart");
        if (!r.ok()) return false;
        before = r->internal["trials"];
        int done = 0, waiting = 0;
        for (const json& t : before) {
          done += t.value("done", false);
          waiting += !t.value("created", false);
        }
        return done >= 1 && waiting >= 1;
      },
      kJobTimeout));
  StopControllers();  // as a crash leaves it: children keep running under their supervisors
  StartControllers();
  ASSERT_TRUE(training_->Recover().ok());
  ASSERT_TRUE(tuning_->Recover().ok());
  json doc = WaitForTuning("restart");
  ASSERT_EQ(doc["HyperParameterTuningJobStatus"], "Completed") << doc.dump(2);
  std::vector<json> docs = TrainingJobsOf("restart");
  ASSERT_EQ(docs.size(), 4u);
  std::set<std::string> names;
  for (const json& d : docs) names.insert(d["TrainingJobName"].get<std::string>());
  EXPECT_EQ(names.size(), 4u);
  auto after = store_->Get(HyperParameterTuningJobController::kKind, "restart");
  ASSERT_TRUE(after.ok());
  const json& trials = after->internal["trials"];
  ASSERT_EQ(trials.size(), 4u);
  for (const json& t : before) {
    const json& now = trials[t["index"].get<std::size_t>()];
    EXPECT_EQ(now["name"], t["name"]);
    EXPECT_EQ(now["hps"], t["hps"]);
    if (t.value("done", false)) {
      EXPECT_EQ(now["objective"], t["objective"]);
    }
  }
  EXPECT_EQ(doc["TrainingJobStatusCounters"]["Completed"], 4);
  EXPECT_LE(MaxOverlap(docs), 2);
}

}  // namespace
}  // namespace hearth::control
