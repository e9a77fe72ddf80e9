// EndpointConfigController: SageMaker endpoint configurations — CreateEndpointConfig,
// DescribeEndpointConfig, ListEndpointConfigs, DeleteEndpointConfig.
//
// An endpoint config is a durable description of a fleet: which models (ProductionVariants,
// and ShadowProductionVariants that get a copy of the traffic) run on how many instances of
// what type, with what share of the traffic (InitialVariantWeight, default 1.0, share =
// weight / sum of weights). Like a model it has no status and no reconciler; an endpoint
// reads it when it deploys. Create checks what SageMaker checks at create time: variant names
// are unique, every variant's model exists, and every variant runs on instances
// (InitialInstanceCount and InstanceType). Hearth serves models on instances only, so a
// ServerlessConfig variant is refused. Deleting a config, or a model it names, leaves the
// other alone, as in SageMaker.
//
// Names are compared without case (see models.h). Errors are SageMaker's:
//   duplicate name -> ValidationException
//                     `Cannot create already existing endpoint configuration "<arn>".`
//   missing config -> ValidationException `Could not find endpoint configuration "<arn>".`
//   missing model  -> ValidationException `Could not find model "<model arn>".`
//
// Thread safety: thread safe.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "metadata/metadata_store.h"

namespace hearth::control {

class EndpointConfigController {
 public:
  // `store` is not owned and must outlive this object.
  EndpointConfigController(AccountContext account, metadata::MetadataStore& store);

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Delete(const nlohmann::json& request);

  static constexpr std::string_view kKind = "EndpointConfig";

 private:
  // InvalidArgument (ValidationException) if the variant at `path` ("productionVariants.1
  // .member") cannot run; `names` collects variant names to find duplicates.
  Status CheckVariant(const nlohmann::json& variant, const std::string& path,
                      std::set<std::string>& names);

  AccountContext account_;
  metadata::MetadataStore& store_;
  std::mutex create_mu_;  // serializes the case-insensitive duplicate check with the create
};

}  // namespace hearth::control
