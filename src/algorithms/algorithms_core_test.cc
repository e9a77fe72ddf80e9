#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <re2/re2.h>

#include "algorithms/algorithm.h"
#include "algorithms/hyperparameters.h"
#include "algorithms/run_training.h"
#include "algorithms/training_context.h"
#include "common/fs.h"
#include "common/ids.h"

namespace hearth::algorithms {
namespace {

namespace fs = std::filesystem;

std::vector<HyperparameterSpec> Specs() {
  return {
      {.name = "predictor_type", .type = HpType::kCategorical, .required = true,
       .choices = {"binary_classifier", "regressor"}},
      {.name = "epochs", .type = HpType::kInt, .default_value = "15", .min = 1},
      {.name = "learning_rate", .type = HpType::kFloat, .default_value = "auto", .min = 0,
       .min_exclusive = true, .allow_auto = true},
      {.name = "use_bias", .type = HpType::kBool, .default_value = "true"},
      {.name = "subsample", .type = HpType::kFloat, .default_value = "1", .min = 0, .max = 1,
       .min_exclusive = true},
  };
}

Result<Hyperparameters> ParseHps(std::map<std::string, std::string> raw) {
  return Hyperparameters::Parse(Specs(), raw);
}

TEST(Hyperparameters, DefaultsFillWhatIsNotGiven) {
  auto hps = ParseHps({{"predictor_type", "regressor"}});
  ASSERT_TRUE(hps.ok()) << hps.status().ToString();
  EXPECT_EQ(hps->String("predictor_type"), "regressor");
  EXPECT_EQ(hps->Int("epochs"), 15);
  EXPECT_TRUE(hps->IsAuto("learning_rate"));
  EXPECT_TRUE(hps->Bool("use_bias"));
  EXPECT_DOUBLE_EQ(hps->Float("subsample"), 1.0);
}

TEST(Hyperparameters, ValuesAreParsedAsSdksSendThem) {
  auto hps = ParseHps({{"predictor_type", "Binary_Classifier"},
                       {"epochs", "10.0"},
                       {"learning_rate", "+0.5"},
                       {"use_bias", "False"}});
  ASSERT_TRUE(hps.ok()) << hps.status().ToString();
  EXPECT_EQ(hps->String("predictor_type"), "binary_classifier");
  EXPECT_EQ(hps->Int("epochs"), 10);
  EXPECT_DOUBLE_EQ(hps->Float("learning_rate"), 0.5);
  EXPECT_FALSE(hps->Bool("use_bias"));
}

void ExpectRejected(std::map<std::string, std::string> raw, const std::string& needle) {
  auto hps = ParseHps(raw);
  ASSERT_FALSE(hps.ok()) << "accepted " << needle;
  EXPECT_EQ(hps.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(hps.status().message().find(needle), std::string::npos) << hps.status().message();
}

TEST(Hyperparameters, BadValuesNameTheHyperparameterAndTheRule) {
  ExpectRejected({}, "Missing required hyperparameter 'predictor_type' (one of binary_classifier, "
                     "regressor)");
  ExpectRejected({{"predictor_type", "clusterer"}}, "'predictor_type' must be one of");
  ExpectRejected({{"predictor_type", "regressor"}, {"epochs", "0"}},
                 "'epochs' must be an integer >= 1, got '0'");
  ExpectRejected({{"predictor_type", "regressor"}, {"epochs", "2.5"}}, "'epochs'");
  ExpectRejected({{"predictor_type", "regressor"}, {"epochs", "auto"}}, "'epochs'");
  ExpectRejected({{"predictor_type", "regressor"}, {"learning_rate", "0"}},
                 "'learning_rate' must be a number > 0 or 'auto', got '0'");
  ExpectRejected({{"predictor_type", "regressor"}, {"subsample", "1.5"}},
                 "'subsample' must be a number in (0, 1]");
  ExpectRejected({{"predictor_type", "regressor"}, {"use_bias", "yes"}}, "'use_bias'");
  ExpectRejected({{"predictor_type", "regressor"}, {"epochs", "nan"}}, "'epochs'");
  ExpectRejected({{"predictor_type", "regressor"}, {"epoch", "3"}},
                 "'epoch' is not a hyperparameter of this algorithm");
}

TEST(Hyperparameters, PlatformKeysAreIgnored) {
  auto hps = ParseHps({{"predictor_type", "regressor"},
                       {"_tuning_objective_metric", "validation:rmse"},
                       {"sagemaker_job_name", "\"x\""}});
  ASSERT_TRUE(hps.ok()) << hps.status().ToString();
  EXPECT_FALSE(hps->Has("_tuning_objective_metric"));
}

class TrainingContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml_ = fs::temp_directory_path() / ("hearth-ctx-" + NewUuid());
    fs::create_directories(ml_ / "input" / "config");
    fs::create_directories(ml_ / "input" / "data" / "train" / "sub");
    fs::create_directories(ml_ / "model");
  }
  void TearDown() override { fs::remove_all(ml_); }
  void Write(const fs::path& rel, const std::string& text) {
    std::ofstream(ml_ / rel) << text;
  }
  fs::path ml_;
};

TEST_F(TrainingContextTest, ReadsHyperparametersChannelsAndHosts) {
  Write("input/config/hyperparameters.json", R"({"epochs":"3","k":5})");
  Write("input/config/inputdataconfig.json",
        R"({"train":{"ContentType":"text/csv;label_size=0","TrainingInputMode":"File"},
            "validation":{"TrainingInputMode":"Pipe"}})");
  Write("input/config/resourceconfig.json",
        R"({"current_host":"algo-2","hosts":["algo-1","algo-2"]})");
  auto ctx = TrainingContext::LoadFrom(ml_, "text/csv");
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ((*ctx)->raw_hyperparameters().at("epochs"), "3");
  EXPECT_EQ((*ctx)->raw_hyperparameters().at("k"), "5");
  EXPECT_EQ((*ctx)->current_host(), "algo-2");
  EXPECT_EQ((*ctx)->hosts().size(), 2u);
  const auto& train = (*ctx)->channels().at("train");
  EXPECT_EQ(train.content_type.label_size, 0);
  EXPECT_FALSE(train.pipe);
  const auto& validation = (*ctx)->channels().at("validation");
  EXPECT_TRUE(validation.pipe);
  EXPECT_EQ(validation.content_type_text, "text/csv");
  EXPECT_EQ((*ctx)->model_dir(), ml_ / "model");
}

TEST_F(TrainingContextTest, UnsupportedContentTypeNamesTheChannel) {
  Write("input/config/inputdataconfig.json", R"({"train":{"ContentType":"image/png"}})");
  auto ctx = TrainingContext::LoadFrom(ml_, "text/csv");
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("channel 'train'"), std::string::npos)
      << ctx.status().message();
}

TEST_F(TrainingContextTest, FileChannelReadsEveryFileInPathOrderSkippingHiddenOnes) {
  Write("input/config/inputdataconfig.json", R"({"train":{"ContentType":"text/csv"}})");
  Write("input/data/train/b.csv", "2,20\n");
  Write("input/data/train/a.csv", "1,10\n");
  Write("input/data/train/sub/c.csv", "3,30\n");
  Write("input/data/train/.hidden", "garbage\n");
  auto ctx = TrainingContext::LoadFrom(ml_, "text/csv");
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  auto reader = (*ctx)->OpenChannel("train", 0);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto all = data::ReadAll(**reader);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->rows, 3u);
  EXPECT_EQ(all->labels, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(all->dense, (std::vector<float>{10, 20, 30}));
  EXPECT_EQ((*ctx)->OpenChannel("test", 0).status().code(), StatusCode::kNotFound);
}

TEST(Metrics, EmittedLinesMatchTheAlgorithmsMetricDefinitions) {
  // RE2, as the platform matches metric definitions.
  MetricDefinition def = QualityMetric("validation", "objective_loss");
  EXPECT_EQ(def.name, "validation:objective_loss");
  RE2 re(def.regex);
  ASSERT_TRUE(re.ok()) << re.error();
  std::string value;
  EXPECT_TRUE(RE2::PartialMatch(
      "#quality_metric: host=algo-1, validation objective_loss <score>=0.25", re, &value));
  EXPECT_EQ(value, "0.25");
  EXPECT_TRUE(RE2::PartialMatch(
      "#quality_metric: host=algo-1, epoch=3, validation objective_loss <score>=1e-05", re,
      &value));
  EXPECT_EQ(value, "1e-05");
  EXPECT_FALSE(RE2::PartialMatch(
      "#quality_metric: host=algo-1, train objective_loss <score>=0.3", re, &value));
}

// An algorithm whose Train fails the way the test asks.
class FailingAlgorithm : public Algorithm {
 public:
  explicit FailingAlgorithm(Status status) : status_(std::move(status)) {}
  std::string_view name() const override { return "failing"; }
  std::vector<std::string> repositories() const override { return {}; }
  std::vector<MetricDefinition> metric_definitions() const override { return {}; }
  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override {
    static const std::vector<HyperparameterSpec> kSpecs = {
        {.name = "k", .type = HpType::kInt, .required = true, .min = 1}};
    return kSpecs;
  }
  Status Train(const TrainingContext&, const Hyperparameters&) const override { return status_; }
  Result<std::unique_ptr<Model>> LoadModel(const fs::path&) const override {
    return Unimplemented("no model");
  }

 private:
  Status status_;
};

TEST_F(TrainingContextTest, RunTrainingWritesTheFailureFileWithSageMakersPrefix) {
  setenv("SM_INPUT_DIR", (ml_ / "input").c_str(), 1);
  setenv("SM_OUTPUT_DIR", (ml_ / "output").c_str(), 1);
  setenv("SM_MODEL_DIR", (ml_ / "model").c_str(), 1);
  Write("input/config/hyperparameters.json", R"({"k":"0"})");
  EXPECT_NE(RunTraining(FailingAlgorithm(Status::Ok())), 0);
  auto reason = ReadFile(ml_ / "output" / "failure");
  ASSERT_TRUE(reason.ok());
  EXPECT_EQ(*reason, "ClientError: Hyperparameter 'k' must be an integer >= 1, got '0'.");

  Write("input/config/hyperparameters.json", R"({"k":"2"})");
  EXPECT_NE(RunTraining(FailingAlgorithm(Internal("out of luck"))), 0);
  reason = ReadFile(ml_ / "output" / "failure");
  ASSERT_TRUE(reason.ok());
  EXPECT_EQ(*reason, "AlgorithmError: out of luck");

  fs::remove(ml_ / "output" / "failure");
  EXPECT_EQ(RunTraining(FailingAlgorithm(Status::Ok())), 0);
  EXPECT_FALSE(fs::exists(ml_ / "output" / "failure"));
  unsetenv("SM_INPUT_DIR");
  unsetenv("SM_OUTPUT_DIR");
  unsetenv("SM_MODEL_DIR");
}

}  // namespace
}  // namespace hearth::algorithms
