// Helpers every controller uses to read and change resource records safely.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "metadata/metadata_store.h"

namespace hearth::control {

// Re-reads the record and applies `mutate` until the compare-and-swap update succeeds, so a
// concurrent writer (an API thread recording Stopping while a monitor thread records progress)
// never loses the other's change. `mutate` returns the transition to record, if any; it may
// return FailedPrecondition to abandon the update (that status is returned as is).
using Mutation = std::function<Result<std::optional<metadata::Transition>>(metadata::Resource&)>;
Result<metadata::Resource> MutateResource(metadata::MetadataStore& store, std::string_view kind,
                                          std::string_view name, const Mutation& mutate);

// SageMaker list pagination over the filtered, sorted rows, given their unique names in
// order. NextToken is opaque to clients; here it names the last row returned (and its
// position, used only if that row has left the list), so a page continues after that row
// even when resources were created meanwhile — a tuning job creating training jobs while
// someone lists them newest first, say. Returns the page bounds or ValidationException for a
// bad token.
struct Page {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::optional<std::string> next_token;
};
Result<Page> Paginate(const nlohmann::json& request, const std::vector<std::string>& names,
                      int default_max = 10);

// How one List* operation reads its request, where SageMaker's operations differ.
struct ListRules {
  std::string_view default_sort_by = "CreationTime";  // Name | CreationTime | Status
  std::string_view default_sort_order = "Descending";
  // CreationTimeAfter is "greater than or equal to" for models, endpoint configs and
  // endpoints, "after" for jobs and notebook instances (as each operation documents it).
  bool creation_time_after_inclusive = false;
  int default_max_results = 10;
};

struct ListPage {
  std::vector<const metadata::Resource*> rows;  // this page, in order; they point into `all`
  std::optional<std::string> next_token;
};

// The rows of `all` a List* request asks for: NameContains (without case), CreationTimeAfter /
// CreationTimeBefore (exclusive), LastModifiedTimeAfter / LastModifiedTimeBefore (exclusive)
// and StatusEquals; sorted by SortBy (Name compares without case; ties go by creation time,
// then name) in SortOrder; one page of MaxResults after NextToken (see Paginate).
// ValidationException for a bad NextToken.
Result<ListPage> FilterSortPage(const std::vector<metadata::Resource>& all,
                                const nlohmann::json& request, const ListRules& rules);

// Reads a SageMaker timestamp member (epoch seconds as a number, or an ISO 8601 string) as
// epoch milliseconds.
std::optional<std::int64_t> TimestampMillis(const nlohmann::json& value);

// Shared by the controllers of resources that have only a name and a creation time to list
// by (models, endpoint configs).

// The record of `kind` named `name`, compared without case. `missing` if there is none (or
// NotFound when `missing` is OK).
Result<metadata::Resource> FindResourceIgnoringCase(metadata::MetadataStore& store,
                                                    std::string_view kind, std::string_view name,
                                                    const Status& missing);

// Stores the new `resource` and its first transition unless a record of its kind already has
// its name, compared without case: `duplicate` then. Callers hold one mutex per kind around
// it, so that two creates differing only in case cannot both pass the check.
Status CreateIfAbsentIgnoringCase(metadata::MetadataStore& store,
                                  const metadata::Resource& resource,
                                  const metadata::Transition& first, const Status& duplicate);

// Deletes the record of `kind` named `name`, compared without case; `missing` if there is none
// (also when another request deleted it between the lookup and the delete: that one answered).
Status DeleteIgnoringCase(metadata::MetadataStore& store, std::string_view kind,
                          std::string_view name, const Status& missing);

// The record of `kind` named `name`, compared without case. NotFound if there is none.
Result<metadata::Resource> FindResourceIgnoringCase(metadata::MetadataStore& store,
                                                    std::string_view kind, std::string_view name);

// A List* answer: NameContains (without case), CreationTimeAfter (inclusive) / Before
// (exclusive), SortBy Name|CreationTime (default CreationTime), SortOrder (default
// Descending), MaxResults (default 10) / NextToken. Each summary under `result_key` holds the
// name under `name_key`, the ARN under `arn_key` and the document's CreationTime.
// ValidationException for a bad NextToken.
Result<nlohmann::json> ListByNameAndCreationTime(
    metadata::MetadataStore& store, std::string_view kind, const nlohmann::json& request,
    const std::string& result_key, const std::string& name_key, const std::string& arn_key);

}  // namespace hearth::control
