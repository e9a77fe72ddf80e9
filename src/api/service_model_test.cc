#include "api/service_model.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hearth::api {
namespace {

using nlohmann::json;

// What the sagemaker SDK sends for a small built-in training job.
json ValidCreateTrainingJob() {
  return json::parse(R"({
    "TrainingJobName": "linear-learner-2024-01-01-00-00-00-000",
    "AlgorithmSpecification": {"TrainingImage": "hearth/linear-learner",
                               "TrainingInputMode": "File"},
    "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
    "InputDataConfig": [
      {"ChannelName": "train",
       "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train",
                                       "S3DataDistributionType": "FullyReplicated"}},
       "ContentType": "text/csv"}
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    "HyperParameters": {"feature_dim": "10", "predictor_type": "regressor"},
    "Tags": [{"Key": "team", "Value": "ml"}],
    "EnableNetworkIsolation": false
  })");
}

Status ValidateTraining(const json& input) {
  return ServiceModel::SageMaker().ValidateInput("CreateTrainingJob", input);
}

void ExpectValidation(const Status& s, const std::string& message) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.reason(), "ValidationException");
  EXPECT_EQ(s.message(), message);
}

void ExpectSerialization(const Status& s, const std::string& message) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.reason(), "SerializationException");
  EXPECT_EQ(s.message(), message);
}

TEST(ServiceModel, EmbeddedModelsServeTheirOperations) {
  const ServiceModel& sm = ServiceModel::SageMaker();
  EXPECT_TRUE(sm.HasOperation("CreateTrainingJob"));
  EXPECT_TRUE(sm.HasOperation("CreatePresignedNotebookInstanceUrl"));
  EXPECT_FALSE(sm.HasOperation("CreateProcessingJob"));
  EXPECT_EQ(sm.OperationNames().size(), 36u);
  EXPECT_EQ(sm.target_prefix(), "SageMaker");
  EXPECT_TRUE(ServiceModel::Logs().HasOperation("GetLogEvents"));
  EXPECT_EQ(ServiceModel::Logs().OperationNames().size(), 4u);
  EXPECT_EQ(ServiceModel::Logs().target_prefix(), "Logs_20140328");
}

TEST(ServiceModel, ValidCreateTrainingJobPasses) {
  Status s = ValidateTraining(ValidCreateTrainingJob());
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(ServiceModel, UnknownMembersAreIgnoredAndNullReadsAsAbsent) {
  json input = ValidCreateTrainingJob();
  input["NotAMember"] = {{"anything", 1}};
  input["VpcConfig"] = nullptr;  // optional structure given as null
  EXPECT_TRUE(ValidateTraining(input).ok());
}

TEST(ServiceModel, MissingRequiredMemberIsNull) {
  json input = ValidCreateTrainingJob();
  input.erase("TrainingJobName");
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value null at 'trainingJobName' failed to "
                   "satisfy constraint: Member must not be null");
}

TEST(ServiceModel, NameBreakingThePatternQuotesTheJavaPattern) {
  json input = ValidCreateTrainingJob();
  input["TrainingJobName"] = "my_job";
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value 'my_job' at 'trainingJobName' failed to "
                   "satisfy constraint: Member must satisfy regular expression pattern: "
                   "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
}

TEST(ServiceModel, TooLongNameReportsLengthThenPattern) {
  // 64 characters break both the length and the pattern's {0,62}, and AWS reports both
  // (as it does for CreateModel's modelName).
  json input = ValidCreateTrainingJob();
  std::string name(64, 'a');
  input["TrainingJobName"] = name;
  ExpectValidation(ValidateTraining(input),
                   "2 validation errors detected: Value '" + name +
                       "' at 'trainingJobName' failed to satisfy constraint: Member must have "
                       "length less than or equal to 63; Value '" +
                       name +
                       "' at 'trainingJobName' failed to satisfy constraint: Member must satisfy "
                       "regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
}

TEST(ServiceModel, EmptyNameIsShorterThanMinimumAndBreaksThePattern) {
  json input = ValidCreateTrainingJob();
  input["TrainingJobName"] = "";
  ExpectValidation(ValidateTraining(input),
                   "2 validation errors detected: Value '' at 'trainingJobName' failed to "
                   "satisfy constraint: Member must have length greater than or equal to 1; "
                   "Value '' at 'trainingJobName' failed to satisfy constraint: Member must "
                   "satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
}

TEST(ServiceModel, BadEnumListsTheValueSet) {
  json input = ValidCreateTrainingJob();
  input["AlgorithmSpecification"]["TrainingInputMode"] = "Foo";
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value 'Foo' at "
                   "'algorithmSpecification.trainingInputMode' failed to satisfy constraint: "
                   "Member must satisfy enum value set: [Pipe, File, FastFile]");
}

TEST(ServiceModel, InstanceTypeOutsideTheEnumNamesTheNestedPath) {
  json input = ValidCreateTrainingJob();
  input["ResourceConfig"]["InstanceType"] = "local";
  Status s = ValidateTraining(input);
  EXPECT_EQ(s.reason(), "ValidationException");
  EXPECT_EQ(s.message().rfind("1 validation error detected: Value 'local' at "
                              "'resourceConfig.instanceType' failed to satisfy constraint: Member "
                              "must satisfy enum value set: [ml.m4.xlarge, ",
                              0),
            0u)
      << s.message();
}

TEST(ServiceModel, ListElementsAreNamedByOneBasedIndexAndMember) {
  json input = ValidCreateTrainingJob();
  json channel = input["InputDataConfig"][0];
  channel["ChannelName"] = "bad channel!";
  input["InputDataConfig"].push_back(channel);
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value 'bad channel!' at "
                   "'inputDataConfig.2.member.channelName' failed to satisfy constraint: Member "
                   "must satisfy regular expression pattern: [A-Za-z0-9\\.\\-_]+");
}

TEST(ServiceModel, MissingMemberInsideListElement) {
  json input = ValidCreateTrainingJob();
  input["InputDataConfig"][0].erase("DataSource");
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value null at "
                   "'inputDataConfig.1.member.dataSource' failed to satisfy constraint: Member "
                   "must not be null");
}

TEST(ServiceModel, EmptyListIsShorterThanMinimum) {
  json input = ValidCreateTrainingJob();
  input["InputDataConfig"] = json::array();
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value '[]' at 'inputDataConfig' failed to "
                   "satisfy constraint: Member must have length greater than or equal to 1");
}

TEST(ServiceModel, MapValueTooLongListsEveryRuleOfTheValueShape) {
  // The wording AWS returns for this exact case (a hyperparameter over 2500 characters).
  json input = ValidCreateTrainingJob();
  std::string long_value(2501, 'x');
  input["HyperParameters"] = {{"classes", long_value}};
  ExpectValidation(ValidateTraining(input),
                   "1 validation error detected: Value '{classes=" + long_value +
                       "}' at 'hyperParameters' failed to satisfy constraint: Map value must "
                       "satisfy constraint: [Member must have length less than or equal to 2500, "
                       "Member must have length greater than or equal to 0, Member must satisfy "
                       "regular expression pattern: .*]");
}

TEST(ServiceModel, MapKeyTooLongIsReportedOnceForTheMap) {
  json input = ValidCreateTrainingJob();
  input["Environment"] = {{std::string(600, 'K'), "v"}, {std::string(601, 'L'), "w"}};
  Status s = ValidateTraining(input);
  EXPECT_EQ(s.reason(), "ValidationException");
  EXPECT_EQ(s.message().rfind("1 validation error detected: Value '{KKK", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("}' at 'environment' failed to satisfy constraint: Map keys must "
                             "satisfy constraint: [Member must have length less than or equal "
                             "to 512, Member must have length greater than or equal to 0, "
                             "Member must satisfy regular expression pattern: "
                             "[a-zA-Z_][a-zA-Z0-9_]*]"),
            std::string::npos)
      << s.message();
}

TEST(ServiceModel, StringForStructureIsSerializationException) {
  json input = ValidCreateTrainingJob();
  input["ResourceConfig"] = "ml.m5.large";
  ExpectSerialization(ValidateTraining(input), "Expected null");
}

TEST(ServiceModel, WrongScalarTypesUseTheDeserializerWording) {
  json input = ValidCreateTrainingJob();
  input["ResourceConfig"]["InstanceCount"] = "1";
  ExpectSerialization(ValidateTraining(input), "STRING_VALUE can not be converted to an Integer");

  input = ValidCreateTrainingJob();
  input["TrainingJobName"] = 7;
  ExpectSerialization(ValidateTraining(input), "NUMBER_VALUE can not be converted to a String");

  input = ValidCreateTrainingJob();
  input["EnableNetworkIsolation"] = "true";
  ExpectSerialization(ValidateTraining(input), "STRING_VALUE can not be converted to an Boolean");

  input = ValidCreateTrainingJob();
  input["InputDataConfig"] = {{"ChannelName", "train"}};
  ExpectSerialization(ValidateTraining(input),
                      "Start of structure or map found where not expected.");

  input = ValidCreateTrainingJob();
  input["TrainingJobName"] = json::array({"a"});
  ExpectSerialization(ValidateTraining(input), "Start of list found where not expected");

  input = ValidCreateTrainingJob();
  input["HyperParameters"] = {{"epochs", 10}};
  ExpectSerialization(ValidateTraining(input), "NUMBER_VALUE can not be converted to a String");
}

TEST(ServiceModel, SerializationErrorWinsOverValidationErrors) {
  json input = ValidCreateTrainingJob();
  input.erase("TrainingJobName");
  input["StoppingCondition"]["MaxRuntimeInSeconds"] = true;
  ExpectSerialization(ValidateTraining(input), "TRUE_VALUE can not be converted to an Integer");
}

TEST(ServiceModel, NonObjectBodyIsSerializationException) {
  ExpectSerialization(ValidateTraining(json::array()), "Start of list found where not expected");
}

TEST(ServiceModel, MaxResultsOutsideItsRange) {
  const ServiceModel& sm = ServiceModel::SageMaker();
  ExpectValidation(sm.ValidateInput("ListTrainingJobs", {{"MaxResults", 0}}),
                   "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 1");
  ExpectValidation(sm.ValidateInput("ListTrainingJobs", {{"MaxResults", 101}}),
                   "1 validation error detected: Value '101' at 'maxResults' failed to satisfy "
                   "constraint: Member must have value less than or equal to 100");
  EXPECT_TRUE(sm.ValidateInput("ListTrainingJobs", {{"MaxResults", 100}}).ok());
  EXPECT_TRUE(sm.ValidateInput("ListTrainingJobs", json::object()).ok());
  EXPECT_TRUE(sm.ValidateInput("ListTrainingJobs", json()).ok());  // empty body
}

TEST(ServiceModel, TwoErrorsUseThePluralHeaderAndModelOrder) {
  json input = ValidCreateTrainingJob();
  input.erase("RoleArn");
  input["TrainingJobName"] = "bad_name";
  ExpectValidation(ValidateTraining(input),
                   "2 validation errors detected: Value 'bad_name' at 'trainingJobName' failed "
                   "to satisfy constraint: Member must satisfy regular expression pattern: "
                   "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; Value null at 'roleArn' failed to satisfy "
                   "constraint: Member must not be null");
}

TEST(ServiceModel, AtMostTenErrorsAreReported) {
  json input = ValidCreateTrainingJob();
  for (int i = 0; i < 15; ++i) {
    input["InputDataConfig"].push_back({{"ChannelName", "bad name"}});
  }
  Status s = ValidateTraining(input);
  EXPECT_EQ(s.reason(), "ValidationException");
  EXPECT_EQ(s.message().rfind("10 validation errors detected: ", 0), 0u) << s.message();
}

TEST(ServiceModel, TimestampsAcceptEpochNumbersAndIsoStrings) {
  const ServiceModel& sm = ServiceModel::SageMaker();
  EXPECT_TRUE(sm.ValidateInput("ListTrainingJobs", {{"CreationTimeAfter", 1700000000}}).ok());
  EXPECT_TRUE(sm.ValidateInput("ListTrainingJobs", {{"CreationTimeAfter", 1700000000.5}}).ok());
  EXPECT_TRUE(
      sm.ValidateInput("ListTrainingJobs", {{"CreationTimeAfter", "2024-01-02T03:04:05Z"}}).ok());
  EXPECT_TRUE(
      sm.ValidateInput("ListTrainingJobs", {{"CreationTimeAfter", "2024-01-02T03:04:05.123+00:00"}})
          .ok());
  ExpectSerialization(sm.ValidateInput("ListTrainingJobs", {{"CreationTimeAfter", "yesterday"}}),
                      "STRING_VALUE can not be converted to a Timestamp");
}

TEST(ServiceModel, FloatBoundsPrintAsJavaDoubles) {
  json input = json::parse(R"({
    "EndpointConfigName": "cfg",
    "ProductionVariants": [{"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large", "InitialVariantWeight": -1}]
  })");
  ExpectValidation(ServiceModel::SageMaker().ValidateInput("CreateEndpointConfig", input),
                   "1 validation error detected: Value '-1.0' at "
                   "'productionVariants.1.member.initialVariantWeight' failed to satisfy "
                   "constraint: Member must have value greater than or equal to 0.0");
}

TEST(ServiceModel, LengthCountsCodePointsNotBytes) {
  // TagValue allows 256 characters: 256 two-byte characters (512 bytes) pass, 257 do not.
  json input = ValidCreateTrainingJob();
  std::string ok_value;
  for (int i = 0; i < 256; ++i) ok_value += "\xC3\xA9";  // é
  input["Tags"] = {{{"Key", "k"}, {"Value", ok_value}}};
  EXPECT_TRUE(ValidateTraining(input).ok()) << ValidateTraining(input).ToString();
  input["Tags"][0]["Value"] = ok_value + "\xC3\xA9";
  Status s = ValidateTraining(input);
  EXPECT_NE(s.message().find("at 'tags.1.member.value' failed to satisfy constraint: Member must "
                             "have length less than or equal to 256"),
            std::string::npos)
      << s.message();
}

TEST(ServiceModel, LogsModelValidatesItsOwnOperations) {
  const ServiceModel& logs = ServiceModel::Logs();
  ExpectValidation(
      logs.ValidateInput("GetLogEvents", {{"logGroupName", "/aws/sagemaker/TrainingJobs"}}),
      "1 validation error detected: Value null at 'logStreamName' failed to "
      "satisfy constraint: Member must not be null");
  EXPECT_TRUE(logs.ValidateInput("GetLogEvents", {{"logGroupName", "/aws/sagemaker/TrainingJobs"},
                                                  {"logStreamName", "job/algo-1-1700000000"},
                                                  {"startFromHead", true}})
                  .ok());
}

TEST(ServiceModel, UnknownOperationIsUnimplemented) {
  Status s = ServiceModel::SageMaker().ValidateInput("CreateProcessingJob", json::object());
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.reason(), "UnknownOperationException");
}

TEST(ServiceModel, OnlyLookaroundPatternsGoUnchecked) {
  // RE2 has no lookaround. SageMaker: AlarmName "(?!\s*$).+" and the "(?<!-)" of ArnOrName and
  // VersionedArnOrName. \p{Alnum} and "{1,2048}" are rewritten and do get checked.
  EXPECT_EQ(ServiceModel::SageMaker().unchecked_pattern_count(), 3u);
  for (const std::string& p : ServiceModel::SageMaker().unchecked_patterns()) {
    EXPECT_TRUE(p.find("(?!") != std::string::npos || p.find("(?<!") != std::string::npos) << p;
  }
  EXPECT_EQ(ServiceModel::Logs().unchecked_pattern_count(), 0u);
}

TEST(ServiceModel, JavaPosixClassesAreChecked) {
  json input = ValidCreateTrainingJob();
  input["AlgorithmSpecification"]["TrainingImageConfig"] = {
      {"TrainingRepositoryAccessMode", "Vpc"},
      {"TrainingRepositoryAuthConfig",
       {{"TrainingRepositoryCredentialsProviderArn",
         "arn:aws:lambda:us-east-1:123456789012:function:creds"}}}};
  EXPECT_TRUE(ValidateTraining(input).ok()) << ValidateTraining(input).ToString();
  input["AlgorithmSpecification"]["TrainingImageConfig"]["TrainingRepositoryAuthConfig"]
       ["TrainingRepositoryCredentialsProviderArn"] =
           "arn:a_b:lambda:us-east-1:123456789012:function:x";
  EXPECT_EQ(ValidateTraining(input).reason(), "ValidationException");
}

// A hand-written model for what the embedded ones do not exercise.
constexpr const char* kTinyModel = R"({
  "metadata": {"targetPrefix": "Tiny"},
  "operations": {"Put": {"name": "Put", "input": {"shape": "PutRequest"}}},
  "shapes": {
    "PutRequest": {"type": "structure", "required": ["Secret"], "members": {
      "Secret": {"shape": "Secret"},
      "Labels": {"shape": "Labels"},
      "Groups": {"shape": "Groups"},
      "Ratio": {"shape": "Ratio"},
      "Big": {"shape": "Big"}
    }},
    "Secret": {"type": "string", "min": 3, "sensitive": true},
    "Labels": {"type": "map", "key": {"shape": "Label"}, "value": {"shape": "Count"}},
    "Label": {"type": "string", "enum": ["a", "b"]},
    "Count": {"type": "integer", "min": 0, "max": 9},
    "Groups": {"type": "map", "key": {"shape": "Name"}, "value": {"shape": "Group"}},
    "Name": {"type": "string"},
    "Group": {"type": "structure", "required": ["Id"], "members": {"Id": {"shape": "Name"}}},
    "Ratio": {"type": "double", "max": 10000000},
    "Big": {"type": "long", "max": 9223372036854775807}
  }
})";

TEST(ServiceModel, LoadRejectsBrokenModels) {
  EXPECT_EQ(ServiceModel::Load("{").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ServiceModel::Load(R"({"operations": {}, "shapes": {"A": {"type": "list",
            "member": {"shape": "Missing"}}}})")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ServiceModel::Load(kTinyModel).ok());
}

TEST(ServiceModel, SensitiveValuesAreNotEchoed) {
  auto model = ServiceModel::Load(kTinyModel);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ExpectValidation((*model)->ValidateInput("Put", {{"Secret", "ab"}}),
                   "1 validation error detected: Value at 'secret' failed to satisfy "
                   "constraint: Member must have length greater than or equal to 3");
}

TEST(ServiceModel, MapKeysAndValuesAreReportedOncePerMapKeysFirst) {
  auto model = ServiceModel::Load(kTinyModel);
  ASSERT_TRUE(model.ok());
  ExpectValidation(
      (*model)->ValidateInput("Put",
                              {{"Secret", "abc"}, {"Labels", {{"a", 10}, {"c", 1}, {"d", 2}}}}),
      "2 validation errors detected: Value '{a=10, c=1, d=2}' at 'labels' failed to satisfy "
      "constraint: Map keys must satisfy constraint: [Member must satisfy enum value set: [a, b]]; "
      "Value '{a=10, c=1, d=2}' at 'labels' failed to satisfy constraint: Map value must satisfy "
      "constraint: [Member must have value less than or equal to 9, Member must have value "
      "greater than or equal to 0]");
}

TEST(ServiceModel, StructuresInsideMapsAreNamedByKeyAndMember) {
  auto model = ServiceModel::Load(kTinyModel);
  ASSERT_TRUE(model.ok());
  ExpectValidation(
      (*model)->ValidateInput("Put", {{"Secret", "abc"}, {"Groups", {{"g1", json::object()}}}}),
      "1 validation error detected: Value null at 'groups.g1.member.id' failed to "
      "satisfy constraint: Member must not be null");
}

TEST(ServiceModel, LargeBoundsCompareAndPrintExactly) {
  auto model = ServiceModel::Load(kTinyModel);
  ASSERT_TRUE(model.ok());
  ExpectValidation((*model)->ValidateInput("Put", {{"Secret", "abc"}, {"Ratio", 20000000}}),
                   "1 validation error detected: Value '2.0E7' at 'ratio' failed to satisfy "
                   "constraint: Member must have value less than or equal to 1.0E7");
  EXPECT_TRUE(
      (*model)->ValidateInput("Put", {{"Secret", "abc"}, {"Big", 9223372036854775807LL}}).ok());
}

}  // namespace
}  // namespace hearth::api
