// Helpers every controller uses to read and change resource records safely.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

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

// Reads a SageMaker timestamp member (epoch seconds as a number, or an ISO 8601 string) as
// epoch milliseconds.
std::optional<std::int64_t> TimestampMillis(const nlohmann::json& value);

}  // namespace hearth::control
