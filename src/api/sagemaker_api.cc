#include "api/sagemaker_api.h"

namespace hearth::api {

std::unique_ptr<JsonProtocolService> MakeSageMakerService(
    control::TrainingJobController& training) {
  using nlohmann::json;
  std::map<std::string, OperationHandler> ops = {
      {"CreateTrainingJob", [&](const json& in) { return training.Create(in); }},
      {"DescribeTrainingJob", [&](const json& in) { return training.Describe(in); }},
      {"ListTrainingJobs", [&](const json& in) { return training.List(in); }},
      {"StopTrainingJob", [&](const json& in) { return training.Stop(in); }},
  };
  return std::make_unique<JsonProtocolService>("SageMaker", ServiceModel::SageMaker(),
                                               std::move(ops));
}

}  // namespace hearth::api
