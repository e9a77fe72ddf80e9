// The SageMaker control-plane operations Hearth serves, wired to their controllers.
#pragma once

#include <memory>

#include "api/json_protocol.h"
#include "control/training_jobs.h"

namespace hearth::api {

// `training` is not owned and must outlive the service.
std::unique_ptr<JsonProtocolService> MakeSageMakerService(control::TrainingJobController& training);

}  // namespace hearth::api
