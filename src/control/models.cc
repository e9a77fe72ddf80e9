#include "control/models.h"

#include <algorithm>
#include <set>

#include "common/clock.h"
#include "control/resource_records.h"

namespace hearth::control {

using nlohmann::json;

namespace {

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

}  // namespace

ModelController::ModelController(AccountContext account, metadata::MetadataStore& store,
                                 storage::ObjectStore& objects, const ImageRegistry& images)
    : account_(std::move(account)), store_(store), objects_(objects), images_(images) {}

Status ModelController::CheckModelData(const std::string& uri, bool prefix) {
  const Status missing = Validation("Could not find model data at " + uri + ".");
  auto loc = storage::ParseS3Uri(uri);
  if (!loc.ok() || loc->bucket.empty()) return missing;
  if (prefix) {
    storage::ListOptions options;
    options.prefix = loc->key;
    options.max_keys = 1;
    auto listed = objects_.List(loc->bucket, options);
    if (!listed.ok()) {
      return listed.status().code() == StatusCode::kNotFound ? missing : listed.status();
    }
    return listed->objects.empty() ? missing : Status::Ok();
  }
  if (loc->key.empty()) return missing;
  auto stat = objects_.Stat(loc->bucket, loc->key);
  if (!stat.ok()) return stat.status().code() == StatusCode::kNotFound ? missing : stat.status();
  return Status::Ok();
}

Status ModelController::CheckContainer(const json& container, const std::string& path) {
  if (!container.contains("Image")) {
    return Validation(container.contains("ModelPackageName")
                          ? "ModelPackageName is not supported by Hearth: name the image in " +
                                path + ".image."
                          : "1 validation error detected: Value null at '" + path +
                                ".image' failed to satisfy constraint: Member must not be null");
  }
  RETURN_IF_ERROR(images_.Resolve(container["Image"].get<std::string>(), path + ".image").status());
  const bool multi_model = container.value("Mode", "SingleModel") == "MultiModel";
  if (container.contains("ModelDataUrl")) {
    // A multi-model container loads models from under a prefix; otherwise it is one archive.
    RETURN_IF_ERROR(CheckModelData(container["ModelDataUrl"].get<std::string>(), multi_model));
  }
  if (container.contains("ModelDataSource")) {
    const json& s3 = container["ModelDataSource"].value("S3DataSource", json::object());
    RETURN_IF_ERROR(
        CheckModelData(s3.value("S3Uri", ""), s3.value("S3DataType", "S3Object") == "S3Prefix"));
  }
  return Status::Ok();
}

Result<json> ModelController::Create(const json& request) {
  const std::string name = request.value("ModelName", "");
  const std::string arn = SageMakerArn(account_, "model", name);
  const bool has_primary = request.contains("PrimaryContainer");
  const bool has_containers = request.contains("Containers") && !request["Containers"].empty();
  if (has_primary && has_containers) {
    return Validation(
        "PrimaryContainer and Containers cannot both be given: name one container in "
        "PrimaryContainer, or an inference pipeline in Containers.");
  }
  if (!has_primary && !has_containers) {
    return Validation("Either PrimaryContainer or Containers must be given.");
  }
  if (has_primary) {
    RETURN_IF_ERROR(CheckContainer(request["PrimaryContainer"], "primaryContainer"));
  } else {
    std::set<std::string> hostnames;
    int index = 0;
    for (const json& c : request["Containers"]) {
      ++index;
      RETURN_IF_ERROR(CheckContainer(c, "containers." + std::to_string(index) + ".member"));
      if (c.contains("ContainerHostname") &&
          !hostnames.insert(c["ContainerHostname"].get<std::string>()).second) {
        return Validation("ContainerHostname '" + c["ContainerHostname"].get<std::string>() +
                          "' is given to more than one container; container hostnames must "
                          "be unique within a model.");
      }
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
  if (doc.contains("Containers") && doc["Containers"].empty()) doc.erase("Containers");
  doc["ModelArn"] = arn;
  doc["CreationTime"] = ToEpochSeconds(now);
  if (!doc.contains("EnableNetworkIsolation")) doc["EnableNetworkIsolation"] = false;
  r.doc = std::move(doc);

  const Status duplicate = Validation("Cannot create already existing model \"" + arn + "\".");
  std::lock_guard<std::mutex> lock(create_mu_);
  RETURN_IF_ERROR(CreateIfAbsentIgnoringCase(store_, r, {"", "", now, "CreateModel"}, duplicate));
  return json{{"ModelArn", arn}};
}

Result<json> ModelController::Describe(const json& request) {
  const std::string name = request.value("ModelName", "");
  const Status missing =
      Validation("Could not find model \"" + SageMakerArn(account_, "model", name) + "\".");
  ASSIGN_OR_RETURN(metadata::Resource r, FindResourceIgnoringCase(store_, kKind, name, missing));
  return r.doc;
}

Result<json> ModelController::List(const json& request) {
  return ListByNameAndCreationTime(store_, kKind, request, "Models", "ModelName", "ModelArn");
}

Result<json> ModelController::Delete(const json& request) {
  const std::string name = request.value("ModelName", "");
  const Status missing =
      Validation("Could not find model \"" + SageMakerArn(account_, "model", name) + "\".");
  RETURN_IF_ERROR(DeleteIgnoringCase(store_, kKind, name, missing));
  return json::object();
}

}  // namespace hearth::control
