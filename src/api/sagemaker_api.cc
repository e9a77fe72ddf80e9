#include "api/sagemaker_api.h"

namespace hearth::api {

std::unique_ptr<JsonProtocolService> MakeSageMakerService(
    control::TrainingJobController& training, control::ModelController& models,
    control::EndpointConfigController& endpoint_configs, control::EndpointController& endpoints,
    control::TransformJobController& transforms, control::NotebookInstanceController& notebooks,
    control::HyperParameterTuningJobController& tuning) {
  using nlohmann::json;
  std::map<std::string, OperationHandler> ops = {
      {"CreateTrainingJob", [&](const json& in) { return training.Create(in); }},
      {"DescribeTrainingJob", [&](const json& in) { return training.Describe(in); }},
      {"ListTrainingJobs", [&](const json& in) { return training.List(in); }},
      {"StopTrainingJob", [&](const json& in) { return training.Stop(in); }},
      {"CreateModel", [&](const json& in) { return models.Create(in); }},
      {"DescribeModel", [&](const json& in) { return models.Describe(in); }},
      {"ListModels", [&](const json& in) { return models.List(in); }},
      {"DeleteModel", [&](const json& in) { return models.Delete(in); }},
      {"CreateEndpointConfig", [&](const json& in) { return endpoint_configs.Create(in); }},
      {"DescribeEndpointConfig", [&](const json& in) { return endpoint_configs.Describe(in); }},
      {"ListEndpointConfigs", [&](const json& in) { return endpoint_configs.List(in); }},
      {"DeleteEndpointConfig", [&](const json& in) { return endpoint_configs.Delete(in); }},
      {"CreateEndpoint", [&](const json& in) { return endpoints.Create(in); }},
      {"DescribeEndpoint", [&](const json& in) { return endpoints.Describe(in); }},
      {"ListEndpoints", [&](const json& in) { return endpoints.List(in); }},
      {"UpdateEndpoint", [&](const json& in) { return endpoints.Update(in); }},
      {"DeleteEndpoint", [&](const json& in) { return endpoints.Delete(in); }},
      {"CreateTransformJob", [&](const json& in) { return transforms.Create(in); }},
      {"DescribeTransformJob", [&](const json& in) { return transforms.Describe(in); }},
      {"ListTransformJobs", [&](const json& in) { return transforms.List(in); }},
      {"StopTransformJob", [&](const json& in) { return transforms.Stop(in); }},
      {"CreateNotebookInstance", [&](const json& in) { return notebooks.Create(in); }},
      {"DescribeNotebookInstance", [&](const json& in) { return notebooks.Describe(in); }},
      {"ListNotebookInstances", [&](const json& in) { return notebooks.List(in); }},
      {"StopNotebookInstance", [&](const json& in) { return notebooks.Stop(in); }},
      {"StartNotebookInstance", [&](const json& in) { return notebooks.Start(in); }},
      {"DeleteNotebookInstance", [&](const json& in) { return notebooks.Delete(in); }},
      {"CreatePresignedNotebookInstanceUrl",
       [&](const json& in) { return notebooks.CreatePresignedUrl(in); }},
      {"CreateHyperParameterTuningJob", [&](const json& in) { return tuning.Create(in); }},
      {"DescribeHyperParameterTuningJob", [&](const json& in) { return tuning.Describe(in); }},
      {"ListHyperParameterTuningJobs", [&](const json& in) { return tuning.List(in); }},
      {"ListTrainingJobsForHyperParameterTuningJob",
       [&](const json& in) { return tuning.ListTrainingJobs(in); }},
      {"StopHyperParameterTuningJob", [&](const json& in) { return tuning.Stop(in); }},
  };
  return std::make_unique<JsonProtocolService>("SageMaker", ServiceModel::SageMaker(),
                                               std::move(ops));
}

}  // namespace hearth::api
