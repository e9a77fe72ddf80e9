#include "control/endpoint_configs.h"

#include "common/clock.h"
#include "control/models.h"
#include "control/resource_records.h"

namespace hearth::control {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxVariants = 10;

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

Status NullMember(const std::string& path) {
  return Validation("1 validation error detected: Value null at '" + path +
                    "' failed to satisfy constraint: Member must not be null");
}

// SageMaker's Describe shows every variant's weight, 1.0 where the request gave none.
void FillDefaultWeights(json& doc, const char* key) {
  if (!doc.contains(key)) return;
  for (json& v : doc[key]) {
    if (!v.contains("InitialVariantWeight")) v["InitialVariantWeight"] = 1.0;
  }
}

}  // namespace

EndpointConfigController::EndpointConfigController(AccountContext account,
                                                   metadata::MetadataStore& store)
    : account_(std::move(account)), store_(store) {}

Status EndpointConfigController::CheckVariant(const json& variant, const std::string& path,
                                              std::set<std::string>& names) {
  const std::string name = variant.value("VariantName", "");
  if (!names.insert(name).second) {
    return Validation("VariantName '" + name +
                      "' is given to more than one production variant; variant names must be "
                      "unique within an endpoint configuration.");
  }
  if (variant.contains("ServerlessConfig")) {
    return Validation(
        "ServerlessConfig is not supported by Hearth, which serves models on "
        "instances: give production variant '" +
        name + "' an InstanceType and an InitialInstanceCount instead.");
  }
  if (!variant.contains("ModelName")) return NullMember(path + ".modelName");
  const std::string model = variant["ModelName"].get<std::string>();
  RETURN_IF_ERROR(
      FindResourceIgnoringCase(
          store_, ModelController::kKind, model,
          Validation("Could not find model \"" + SageMakerArn(account_, "model", model) + "\"."))
          .status());
  if (!variant.contains("InstanceType")) return NullMember(path + ".instanceType");
  if (!variant.contains("InitialInstanceCount")) return NullMember(path + ".initialInstanceCount");
  return Status::Ok();
}

Result<json> EndpointConfigController::Create(const json& request) {
  const std::string name = request.value("EndpointConfigName", "");
  const std::string arn = SageMakerArn(account_, "endpoint-config", name);
  const json variants = request.value("ProductionVariants", json::array());
  if (variants.empty() || variants.size() > kMaxVariants) {
    return Validation("An endpoint configuration has 1 to " + std::to_string(kMaxVariants) +
                      " ProductionVariants; this one has " + std::to_string(variants.size()) + ".");
  }
  // Shadow variants share the name space of the production ones: both are variants of the
  // endpoint (DescribeEndpoint lists them side by side).
  std::set<std::string> names;
  for (const auto& [key, path_prefix] :
       {std::pair<const char*, const char*>{"ProductionVariants", "productionVariants"},
        {"ShadowProductionVariants", "shadowProductionVariants"}}) {
    int index = 0;
    for (const json& v : request.value(key, json::array())) {
      ++index;
      RETURN_IF_ERROR(CheckVariant(
          v, std::string(path_prefix) + "." + std::to_string(index) + ".member", names));
    }
  }

  const std::int64_t now = NowMillis();
  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = arn;
  r.created_millis = r.modified_millis = now;
  json doc = request;
  doc.erase("Tags");
  FillDefaultWeights(doc, "ProductionVariants");
  FillDefaultWeights(doc, "ShadowProductionVariants");
  doc["EndpointConfigArn"] = arn;
  doc["CreationTime"] = ToEpochSeconds(now);
  r.doc = std::move(doc);

  const Status duplicate =
      Validation("Cannot create already existing endpoint configuration \"" + arn + "\".");
  std::lock_guard<std::mutex> lock(create_mu_);
  RETURN_IF_ERROR(CreateIfAbsentIgnoringCase(store_, r, {"", "", now, "CreateEndpointConfig"}, duplicate));
  return json{{"EndpointConfigArn", arn}};
}

Result<json> EndpointConfigController::Describe(const json& request) {
  const std::string name = request.value("EndpointConfigName", "");
  const Status missing = Validation("Could not find endpoint configuration \"" +
                                    SageMakerArn(account_, "endpoint-config", name) + "\".");
  ASSIGN_OR_RETURN(metadata::Resource r, FindResourceIgnoringCase(store_, kKind, name, missing));
  return r.doc;
}

Result<json> EndpointConfigController::List(const json& request) {
  return ListByNameAndCreationTime(store_, kKind, request, "EndpointConfigs", "EndpointConfigName",
                                   "EndpointConfigArn");
}

Result<json> EndpointConfigController::Delete(const json& request) {
  const std::string name = request.value("EndpointConfigName", "");
  const Status missing = Validation("Could not find endpoint configuration \"" +
                                    SageMakerArn(account_, "endpoint-config", name) + "\".");
  RETURN_IF_ERROR(DeleteIgnoringCase(store_, kKind, name, missing));
  return json::object();
}

}  // namespace hearth::control
