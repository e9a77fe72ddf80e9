// The SageMaker control-plane operations Hearth serves, wired to their controllers.
#pragma once

#include <memory>

#include "api/json_protocol.h"
#include "control/endpoint_configs.h"
#include "control/endpoints.h"
#include "control/models.h"
#include "control/notebook_instances.h"
#include "control/training_jobs.h"
#include "control/transform_jobs.h"
#include "control/tuning_jobs.h"

namespace hearth::api {

// The controllers are not owned and must outlive the service.
std::unique_ptr<JsonProtocolService> MakeSageMakerService(
    control::TrainingJobController& training, control::ModelController& models,
    control::EndpointConfigController& endpoint_configs, control::EndpointController& endpoints,
    control::TransformJobController& transforms, control::NotebookInstanceController& notebooks,
    control::HyperParameterTuningJobController& tuning);

}  // namespace hearth::api
