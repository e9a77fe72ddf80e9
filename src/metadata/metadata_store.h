// MetadataStore keeps every SageMaker resource Hearth manages (training jobs now; models,
// endpoints, tuning jobs later): what the user asked for, its status, its status history and
// its timestamps. No resource state lives only in memory: controllers read it back after a
// restart and reconcile.
//
// A resource is stored as one record keyed by (kind, name):
//   - `doc`: the resource's Describe* document as SageMaker returns it (JSON object). It holds
//     the request as given plus status fields; Describe returns it as is.
//   - `internal`: the controller's private bookkeeping (process ids, log offsets, ...), never
//     shown to clients.
//   - `status`, `created_millis`, `modified_millis`: copied out of the document for listing.
//   - `version`: bumped by every update; updates are compare-and-swap on it.
// Each Create/Update runs in one transaction together with its history rows, so a crash
// leaves either the old record or the new one with its transition.
//
// Implementations: SqliteMetadataStore (sqlite_metadata_store.h). PostgreSQL comes later
// behind this interface, so SQL stays portable.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hearth::metadata {

struct Resource {
  std::string kind;  // "TrainingJob", "Model", ...
  std::string name;
  std::string arn;
  std::string status;
  std::int64_t created_millis = 0;
  std::int64_t modified_millis = 0;
  nlohmann::json doc = nlohmann::json::object();
  nlohmann::json internal = nlohmann::json::object();
  std::int64_t version = 0;  // set by the store
};

// One row of a resource's status history.
struct Transition {
  std::string status;
  std::string secondary_status;  // may be empty
  std::int64_t at_millis = 0;
  std::string message;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Stores a new resource (version 1) and its first transition.
  // AlreadyExists if (kind, name) is taken.
  virtual Status Create(const Resource& resource, const Transition& first) = 0;

  // NotFound if absent.
  virtual Result<Resource> Get(std::string_view kind, std::string_view name) = 0;

  // All resources of a kind, ordered by creation time then name. Listing filters, sorts and
  // pages in the caller; local scale makes that cheap and keeps SQL portable.
  virtual Result<std::vector<Resource>> List(std::string_view kind) = 0;

  // Replaces the record if its stored version is still `resource.version`, then bumps the
  // version. Appends `transition` to the history in the same transaction when given.
  // FailedPrecondition("VersionConflict") if someone else updated it first; NotFound if gone.
  virtual Result<std::int64_t> Update(const Resource& resource,
                                      const std::optional<Transition>& transition) = 0;

  // Removes the record and its history in one transaction. NotFound if absent.
  virtual Status Delete(std::string_view kind, std::string_view name) = 0;

  // Oldest first. NotFound if the resource is absent.
  virtual Result<std::vector<Transition>> History(std::string_view kind, std::string_view name) = 0;
};

}  // namespace hearth::metadata
