#include "control/models.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/clock.h"
#include "control/endpoint_configs.h"
#include "metadata/sqlite_metadata_store.h"
#include "storage/local_object_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kRole[] = "arn:aws:iam::000000000000:role/SageMakerRole";
constexpr char kModelData[] = "s3://models/xgb/model.tar.gz";
constexpr char kEcrXgboost[] =
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";

json Container(const std::string& image, const std::string& data = kModelData) {
  json c = {{"Image", image}, {"Environment", {{"SAGEMAKER_PROGRAM", "serve.py"}}}};
  if (!data.empty()) c["ModelDataUrl"] = data;
  return c;
}

json ModelRequest(const std::string& name, const json& container = Container("hearth/xgboost")) {
  return {{"ModelName", name},
          {"ExecutionRoleArn", kRole},
          {"PrimaryContainer", container},
          {"Tags", json::array({{{"Key", "team"}, {"Value", "ml"}}})}};
}

json Variant(const std::string& name, const std::string& model) {
  return {{"VariantName", name},
          {"ModelName", model},
          {"InitialInstanceCount", 1},
          {"InstanceType", "ml.m5.large"}};
}

json ConfigRequest(const std::string& name, const json& variants) {
  return {{"EndpointConfigName", name}, {"ProductionVariants", variants}};
}

std::vector<std::string> Names(const json& list_output, const std::string& key,
                               const std::string& name_key) {
  std::vector<std::string> names;
  for (const json& s : list_output.value(key, json::array())) names.push_back(s[name_key]);
  return names;
}

// Returns once the millisecond clock has moved on, so that resources created before and after
// have different creation times.
void NextMillisecond() {
  const std::int64_t start = NowMillis();
  while (NowMillis() == start) {
  }
}

void ExpectValidation(const Result<json>& r, const std::string& message_part) {
  ASSERT_FALSE(r.ok()) << r->dump();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_EQ(r.status().reason(), "ValidationException");
  EXPECT_NE(r.status().message().find(message_part), std::string::npos)
      << "'" << message_part << "' not in: " << r.status().message();
}

// Real components: a SQLite store in a temp file (so a test can reopen it) and a
// LocalObjectStore holding one model artifact.
class ModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-models-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto objects = storage::OpenLocalObjectStore({.root = root_ / "objects"});
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(objects).value();
    ASSERT_TRUE(objects_->CreateBucket("models").ok());
    ASSERT_TRUE(objects_->PutObject("models", "xgb/model.tar.gz", "not really a tarball").ok());
    OpenControllers();
  }

  void TearDown() override {
    configs_.reset();
    models_.reset();
    images_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // (Re)opens the store and builds the controllers on it, as a server start does.
  void OpenControllers() {
    configs_.reset();
    models_.reset();
    images_.reset();
    store_.reset();
    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    images_ = std::make_unique<ImageRegistry>(
        *store_,
        std::map<std::string, BuiltinImage>{
            {"xgboost",
             {.repositories = {"sagemaker-xgboost", "xgboost"}, .metric_definitions = {}}}});
    models_ = std::make_unique<ModelController>(AccountContext{}, *store_, *objects_, *images_);
    configs_ = std::make_unique<EndpointConfigController>(AccountContext{}, *store_);
  }

  void CreateModel(const std::string& name) {
    auto r = models_->Create(ModelRequest(name));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  fs::path root_;
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<storage::ObjectStore> objects_;
  std::unique_ptr<ImageRegistry> images_;
  std::unique_ptr<ModelController> models_;
  std::unique_ptr<EndpointConfigController> configs_;
};

TEST_F(ModelsTest, DescribeModelReturnsTheRequestWithArnAndCreationTime) {
  const double before = NowEpochSeconds();
  json request = ModelRequest("My-Model");
  auto created = models_->Create(request);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string arn = "arn:aws:sagemaker:us-east-1:000000000000:model/my-model";
  EXPECT_EQ(*created, json({{"ModelArn", arn}}));

  auto doc = models_->Describe({{"ModelName", "My-Model"}});
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["ModelName"], "My-Model");
  EXPECT_EQ((*doc)["ModelArn"], arn);
  EXPECT_EQ((*doc)["ExecutionRoleArn"], kRole);
  EXPECT_EQ((*doc)["PrimaryContainer"], request["PrimaryContainer"]);
  EXPECT_EQ((*doc)["EnableNetworkIsolation"], false);
  EXPECT_FALSE(doc->contains("Tags"));
  ASSERT_TRUE((*doc)["CreationTime"].is_number_float());
  EXPECT_GE((*doc)["CreationTime"].get<double>(), before - 0.001);
  EXPECT_LE((*doc)["CreationTime"].get<double>(), NowEpochSeconds() + 0.001);
}

TEST_F(ModelsTest, CreateModelAcceptsTheSageMakerEcrUriOfABuiltin) {
  auto r = models_->Create(ModelRequest("ecr", Container(kEcrXgboost)));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(ModelsTest, CreateModelNeedsExactlyOneOfPrimaryContainerAndContainers) {
  json neither = ModelRequest("m");
  neither.erase("PrimaryContainer");
  ExpectValidation(models_->Create(neither), "PrimaryContainer or Containers");
  json both = ModelRequest("m");
  both["Containers"] = json::array({Container("hearth/xgboost")});
  ExpectValidation(models_->Create(both), "PrimaryContainer and Containers");
  EXPECT_FALSE(models_->Describe({{"ModelName", "m"}}).ok());
}

TEST_F(ModelsTest, CreateModelAcceptsAnInferencePipelineInContainers) {
  json request = ModelRequest("pipeline");
  request.erase("PrimaryContainer");
  request["Containers"] =
      json::array({Container("hearth/xgboost"), Container(kEcrXgboost, /*data=*/"")});
  request["InferenceExecutionConfig"] = {{"Mode", "Serial"}};
  ASSERT_TRUE(models_->Create(request).ok());
  auto doc = models_->Describe({{"ModelName", "pipeline"}});
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["Containers"], request["Containers"]);
  EXPECT_FALSE(doc->contains("PrimaryContainer"));
  EXPECT_EQ((*doc)["InferenceExecutionConfig"]["Mode"], "Serial");
}

TEST_F(ModelsTest, CreateModelRejectsAnUnknownImageNamingItAndWhere) {
  ExpectValidation(models_->Create(ModelRequest("m", Container("no-such/image:1"))),
                   "no-such/image:1");
  ExpectValidation(models_->Create(ModelRequest("m", Container("no-such/image:1"))),
                   "primaryContainer.image");
  json request = ModelRequest("m");
  request.erase("PrimaryContainer");
  request["Containers"] = json::array({Container("hearth/xgboost"), Container("other:2")});
  ExpectValidation(models_->Create(request), "containers.2.member.image");
}

TEST_F(ModelsTest, CreateModelRejectsAContainerWithoutImage) {
  ExpectValidation(models_->Create(ModelRequest("m", {{"ModelDataUrl", kModelData}})),
                   "primaryContainer.image");
  ExpectValidation(models_->Create(ModelRequest("m", {{"ModelPackageName", "pkg"}})),
                   "ModelPackageName");
}

TEST_F(ModelsTest, CreateModelRejectsModelDataThatDoesNotExist) {
  for (const std::string url : {"s3://models/xgb/missing.tar.gz", "s3://no-bucket/model.tar.gz",
                                "s3://models/xgb/", "https://example.com/model.tar.gz"}) {
    ExpectValidation(models_->Create(ModelRequest("m", Container("hearth/xgboost", url))),
                     "Could not find model data at " + url + ".");
  }
  json source = Container("hearth/xgboost", "");
  source["ModelDataSource"] = {{"S3DataSource",
                                {{"S3Uri", "s3://models/nothing/"},
                                 {"S3DataType", "S3Prefix"},
                                 {"CompressionType", "None"}}}};
  ExpectValidation(models_->Create(ModelRequest("m", source)),
                   "Could not find model data at s3://models/nothing/.");
  EXPECT_FALSE(models_->Describe({{"ModelName", "m"}}).ok());
}

TEST_F(ModelsTest, CreateModelTakesAPrefixForMultiModelAndS3PrefixData) {
  json multi = Container("hearth/xgboost", "s3://models/xgb/");
  multi["Mode"] = "MultiModel";
  EXPECT_TRUE(models_->Create(ModelRequest("multi", multi)).ok());
  json source = Container("hearth/xgboost", "");
  source["ModelDataSource"] = {
      {"S3DataSource",
       {{"S3Uri", "s3://models/xgb/"}, {"S3DataType", "S3Prefix"}, {"CompressionType", "None"}}}};
  EXPECT_TRUE(models_->Create(ModelRequest("source", source)).ok());
}

TEST_F(ModelsTest, CreateModelWithoutModelDataIsAccepted) {
  EXPECT_TRUE(models_->Create(ModelRequest("bare", Container("hearth/xgboost", ""))).ok());
}

TEST_F(ModelsTest, CreateModelRejectsADuplicateNameIgnoringCase) {
  CreateModel("dup");
  const std::string message =
      "Cannot create already existing model \"arn:aws:sagemaker:us-east-1:000000000000:model/"
      "dup\".";
  ExpectValidation(models_->Create(ModelRequest("dup")), message);
  ExpectValidation(models_->Create(ModelRequest("DUP")), message);
  auto list = models_->List(json::object());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Names(*list, "Models", "ModelName"), std::vector<std::string>{"dup"});
}

TEST_F(ModelsTest, DescribeAndDeleteOfAMissingModelCouldNotFindIt) {
  const std::string message =
      "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/ghost\".";
  ExpectValidation(models_->Describe({{"ModelName", "ghost"}}), message);
  ExpectValidation(models_->Delete({{"ModelName", "ghost"}}), message);
}

TEST_F(ModelsTest, DeleteModelRemovesTheRecordButNotTheArtifact) {
  CreateModel("gone");
  auto deleted = models_->Delete({{"ModelName", "GONE"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, json::object());
  ExpectValidation(models_->Describe({{"ModelName", "gone"}}), "Could not find model");
  ExpectValidation(models_->Delete({{"ModelName", "gone"}}), "Could not find model");
  EXPECT_TRUE(objects_->Stat("models", "xgb/model.tar.gz").ok());
  CreateModel("gone");  // the name is free again
}

TEST_F(ModelsTest, ListModelsSortsFiltersAndPages) {
  for (const char* name : {"beta", "alpha", "gamma-x", "delta-x"}) {
    CreateModel(name);
    NextMillisecond();
  }
  auto names = [&](json request) {
    auto r = models_->List(request);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Names(*r, "Models", "ModelName") : std::vector<std::string>{};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(json::object()), (V{"delta-x", "gamma-x", "alpha", "beta"}));  // newest first
  EXPECT_EQ(names({{"SortOrder", "Ascending"}}), (V{"beta", "alpha", "gamma-x", "delta-x"}));
  EXPECT_EQ(names({{"SortBy", "Name"}, {"SortOrder", "Ascending"}}),
            (V{"alpha", "beta", "delta-x", "gamma-x"}));
  EXPECT_EQ(names({{"SortBy", "Name"}}), (V{"gamma-x", "delta-x", "beta", "alpha"}));
  EXPECT_EQ(names({{"NameContains", "-X"}, {"SortBy", "Name"}}), (V{"gamma-x", "delta-x"}));

  auto alpha = models_->Describe({{"ModelName", "alpha"}});
  ASSERT_TRUE(alpha.ok());
  const json alpha_time = (*alpha)["CreationTime"];
  EXPECT_EQ(names({{"CreationTimeAfter", alpha_time}, {"SortOrder", "Ascending"}}),
            (V{"alpha", "gamma-x", "delta-x"}));
  EXPECT_EQ(names({{"CreationTimeBefore", alpha_time}}), (V{"beta"}));

  auto page1 = models_->List({{"MaxResults", 3}, {"SortBy", "Name"}, {"SortOrder", "Ascending"}});
  ASSERT_TRUE(page1.ok());
  EXPECT_EQ(Names(*page1, "Models", "ModelName"), (V{"alpha", "beta", "delta-x"}));
  ASSERT_TRUE(page1->contains("NextToken"));
  const json& first = (*page1)["Models"][0];
  EXPECT_EQ(first["ModelArn"], "arn:aws:sagemaker:us-east-1:000000000000:model/alpha");
  EXPECT_EQ(first["CreationTime"], alpha_time);
  auto page2 = models_->List({{"MaxResults", 3},
                              {"SortBy", "Name"},
                              {"SortOrder", "Ascending"},
                              {"NextToken", (*page1)["NextToken"]}});
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ(Names(*page2, "Models", "ModelName"), (V{"gamma-x"}));
  EXPECT_FALSE(page2->contains("NextToken"));
  ExpectValidation(models_->List({{"NextToken", "garbage"}}), "Invalid pagination token");
}

TEST_F(ModelsTest, ModelsAndEndpointConfigsSurviveReopeningTheStore) {
  CreateModel("kept");
  ASSERT_TRUE(
      configs_->Create(ConfigRequest("kept-config", json::array({Variant("v", "kept")}))).ok());
  auto model_before = models_->Describe({{"ModelName", "kept"}});
  auto config_before = configs_->Describe({{"EndpointConfigName", "kept-config"}});
  ASSERT_TRUE(model_before.ok() && config_before.ok());
  OpenControllers();
  auto model_after = models_->Describe({{"ModelName", "kept"}});
  auto config_after = configs_->Describe({{"EndpointConfigName", "kept-config"}});
  ASSERT_TRUE(model_after.ok()) << model_after.status().ToString();
  ASSERT_TRUE(config_after.ok()) << config_after.status().ToString();
  EXPECT_EQ(*model_after, *model_before);
  EXPECT_EQ(*config_after, *config_before);
}

TEST_F(ModelsTest, DescribeEndpointConfigShowsVariantsWithDefaultWeights) {
  CreateModel("m1");
  CreateModel("m2");
  json weighted = Variant("b", "m2");
  weighted["InitialVariantWeight"] = 3.0;
  json request = ConfigRequest("My-Config", json::array({Variant("a", "m1"), weighted}));
  request["Tags"] = json::array({{{"Key", "k"}, {"Value", "v"}}});
  auto created = configs_->Create(request);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string arn = "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/my-config";
  EXPECT_EQ(*created, json({{"EndpointConfigArn", arn}}));
  auto doc = configs_->Describe({{"EndpointConfigName", "My-Config"}});
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["EndpointConfigName"], "My-Config");
  EXPECT_EQ((*doc)["EndpointConfigArn"], arn);
  EXPECT_TRUE((*doc)["CreationTime"].is_number_float());
  EXPECT_FALSE(doc->contains("Tags"));
  const json& variants = (*doc)["ProductionVariants"];
  ASSERT_EQ(variants.size(), 2u);
  EXPECT_EQ(variants[0]["InitialVariantWeight"], 1.0);
  EXPECT_EQ(variants[0]["ModelName"], "m1");
  EXPECT_EQ(variants[0]["InstanceType"], "ml.m5.large");
  EXPECT_EQ(variants[1]["InitialVariantWeight"], 3.0);
}

TEST_F(ModelsTest, CreateEndpointConfigNeedsEveryModelToExist) {
  CreateModel("present");
  ExpectValidation(
      configs_->Create(
          ConfigRequest("c", json::array({Variant("a", "present"), Variant("b", "Absent")}))),
      "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/absent\".");
  json shadow = ConfigRequest("c", json::array({Variant("a", "present")}));
  shadow["ShadowProductionVariants"] = json::array({Variant("s", "absent")});
  ExpectValidation(configs_->Create(shadow), "Could not find model");
  ExpectValidation(configs_->Describe({{"EndpointConfigName", "c"}}), "Could not find");
}

TEST_F(ModelsTest, CreateEndpointConfigRejectsRepeatedVariantNames) {
  CreateModel("m");
  ExpectValidation(
      configs_->Create(ConfigRequest("c", json::array({Variant("a", "m"), Variant("a", "m")}))),
      "VariantName 'a'");
  json shadow = ConfigRequest("c", json::array({Variant("a", "m")}));
  shadow["ShadowProductionVariants"] = json::array({Variant("a", "m")});
  ExpectValidation(configs_->Create(shadow), "VariantName 'a'");
}

TEST_F(ModelsTest, CreateEndpointConfigNeedsInstancesAndRefusesServerless) {
  CreateModel("m");
  json serverless = {{"VariantName", "s"},
                     {"ModelName", "m"},
                     {"ServerlessConfig", {{"MemorySizeInMB", 2048}, {"MaxConcurrency", 5}}}};
  ExpectValidation(configs_->Create(ConfigRequest("c", json::array({serverless}))),
                   "ServerlessConfig is not supported");
  json no_count = Variant("a", "m");
  no_count.erase("InitialInstanceCount");
  ExpectValidation(configs_->Create(ConfigRequest("c", json::array({no_count}))),
                   "productionVariants.1.member.initialInstanceCount");
  json no_type = Variant("a", "m");
  no_type.erase("InstanceType");
  ExpectValidation(configs_->Create(ConfigRequest("c", json::array({no_type}))),
                   "productionVariants.1.member.instanceType");
  ExpectValidation(configs_->Create(ConfigRequest("c", json::array())), "1 to 10");
}

TEST_F(ModelsTest, EndpointConfigDuplicatesAndMissingOnesAreValidationErrors) {
  CreateModel("m");
  ASSERT_TRUE(configs_->Create(ConfigRequest("cfg", json::array({Variant("a", "m")}))).ok());
  ExpectValidation(configs_->Create(ConfigRequest("CFG", json::array({Variant("a", "m")}))),
                   "Cannot create already existing endpoint configuration "
                   "\"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg\".");
  const std::string missing =
      "Could not find endpoint configuration "
      "\"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/nope\".";
  ExpectValidation(configs_->Describe({{"EndpointConfigName", "nope"}}), missing);
  ExpectValidation(configs_->Delete({{"EndpointConfigName", "nope"}}), missing);
  auto deleted = configs_->Delete({{"EndpointConfigName", "cfg"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  ExpectValidation(configs_->Describe({{"EndpointConfigName", "cfg"}}), "Could not find");
  EXPECT_TRUE(models_->Describe({{"ModelName", "m"}}).ok());  // the model stays
}

TEST_F(ModelsTest, DeletingAModelLeavesTheEndpointConfigsThatNameIt) {
  CreateModel("m");
  ASSERT_TRUE(configs_->Create(ConfigRequest("cfg", json::array({Variant("a", "m")}))).ok());
  ASSERT_TRUE(models_->Delete({{"ModelName", "m"}}).ok());
  auto doc = configs_->Describe({{"EndpointConfigName", "cfg"}});
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["ProductionVariants"][0]["ModelName"], "m");
}

TEST_F(ModelsTest, ListEndpointConfigsSortsFiltersAndPages) {
  CreateModel("m");
  for (const char* name : {"cfg-b", "cfg-a", "other"}) {
    ASSERT_TRUE(configs_->Create(ConfigRequest(name, json::array({Variant("v", "m")}))).ok());
    NextMillisecond();
  }
  using V = std::vector<std::string>;
  auto list = configs_->List(json::object());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Names(*list, "EndpointConfigs", "EndpointConfigName"), (V{"other", "cfg-a", "cfg-b"}));
  EXPECT_EQ((*list)["EndpointConfigs"][0]["EndpointConfigArn"],
            "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/other");
  auto filtered = configs_->List(
      {{"NameContains", "cfg"}, {"SortBy", "Name"}, {"SortOrder", "Ascending"}, {"MaxResults", 1}});
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(Names(*filtered, "EndpointConfigs", "EndpointConfigName"), (V{"cfg-a"}));
  auto next = configs_->List({{"NameContains", "cfg"},
                              {"SortBy", "Name"},
                              {"SortOrder", "Ascending"},
                              {"MaxResults", 1},
                              {"NextToken", (*filtered)["NextToken"]}});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Names(*next, "EndpointConfigs", "EndpointConfigName"), (V{"cfg-b"}));
  EXPECT_FALSE(next->contains("NextToken"));
}

}  // namespace
}  // namespace hearth::control
