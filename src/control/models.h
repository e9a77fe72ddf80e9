// ModelController: SageMaker models — CreateModel, DescribeModel, ListModels, DeleteModel.
//
// A model is a durable description, not a running thing: which image serves which artifact
// (PrimaryContainer, or Containers for an inference pipeline) with what environment. It has
// no status and no reconciler; endpoints read it when they deploy. Create checks what
// SageMaker checks at create time, so a bad model fails here rather than at deploy:
//   - exactly one of PrimaryContainer and Containers is given;
//   - every container's Image resolves in the ImageRegistry;
//   - every ModelDataUrl (ModelDataSource.S3DataSource.S3Uri) names data that exists in the
//     object store: an object, or for Mode MultiModel / S3DataType S3Prefix a non-empty prefix.
// Delete removes only the record: the artifacts stay, and endpoint configs that name the model
// keep naming it (SageMaker allows this too; deploying such a config then fails).
//
// Names are compared without case, as SageMaker's ARNs hold them lower-cased: "MyModel" and
// "mymodel" are one model, and Describe/Delete find it under either spelling. The Describe
// document keeps the name as it was created.
//
// Errors are SageMaker's, which the sagemaker SDK and boto3 waiters match on:
//   duplicate name -> ValidationException `Cannot create already existing model "<arn>".`
//   missing model  -> ValidationException `Could not find model "<arn>".`
//
// Thread safety: thread safe.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "control/image_registry.h"
#include "metadata/metadata_store.h"
#include "storage/object_store.h"

namespace hearth::control {

class ModelController {
 public:
  // The stores and the registry are not owned and must outlive this object.
  ModelController(AccountContext account, metadata::MetadataStore& store,
                  storage::ObjectStore& objects, const ImageRegistry& images);

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Delete(const nlohmann::json& request);

  static constexpr std::string_view kKind = "Model";

 private:
  // InvalidArgument (ValidationException) if the container at `path` (as SageMaker names
  // members in messages: "primaryContainer", "containers.2.member") cannot be served.
  Status CheckContainer(const nlohmann::json& container, const std::string& path);
  Status CheckModelData(const std::string& uri, bool prefix);

  AccountContext account_;
  metadata::MetadataStore& store_;
  storage::ObjectStore& objects_;
  const ImageRegistry& images_;
  std::mutex create_mu_;  // serializes the case-insensitive duplicate check with the create
};

}  // namespace hearth::control
