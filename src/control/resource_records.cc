#include "control/resource_records.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "common/crypto.h"

namespace hearth::control {

Result<metadata::Resource> MutateResource(metadata::MetadataStore& store, std::string_view kind,
                                          std::string_view name, const Mutation& mutate) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    ASSIGN_OR_RETURN(metadata::Resource record, store.Get(kind, name));
    ASSIGN_OR_RETURN(std::optional<metadata::Transition> transition, mutate(record));
    auto updated = store.Update(record, transition);
    if (updated.ok()) {
      record.version = *updated;
      return record;
    }
    if (updated.status().reason() != "VersionConflict") return updated.status();
  }
  return Internal("could not update " + std::string(kind) + " " + std::string(name) +
                  ": too many concurrent updates");
}

Result<Page> Paginate(const nlohmann::json& request, const std::vector<std::string>& names,
                      int default_max) {
  const std::size_t total = names.size();
  std::size_t max = static_cast<std::size_t>(request.value("MaxResults", default_max));
  std::size_t begin = 0;
  if (request.contains("NextToken")) {
    // "after:<position>:<name>" — the row to continue after, and where it was.
    std::string raw;
    const std::string token = request["NextToken"].get<std::string>();
    bool ok = Base64Decode(token, &raw) && raw.rfind("after:", 0) == 0;
    std::size_t colon = ok ? raw.find(':', 6) : std::string::npos;
    ok = ok && colon != std::string::npos && colon > 6;
    if (ok) {
      try {
        std::size_t used = 0;
        begin = std::stoull(raw.substr(6, colon - 6), &used) + 1;
        ok = used == colon - 6;
      } catch (...) {
        ok = false;
      }
    }
    if (!ok) {
      return InvalidArgument("Invalid pagination token: '" + token + "'.", "ValidationException");
    }
    auto it = std::find(names.begin(), names.end(), raw.substr(colon + 1));
    if (it != names.end()) begin = static_cast<std::size_t>(it - names.begin()) + 1;
  }
  Page page;
  page.begin = std::min(begin, total);
  page.end = std::min(total, page.begin + max);
  if (page.end < total) {
    page.next_token =
        Base64Encode("after:" + std::to_string(page.end - 1) + ":" + names[page.end - 1]);
  }
  return page;
}

std::optional<std::int64_t> TimestampMillis(const nlohmann::json& value) {
  // Rounded, not truncated: 1.001 * 1000 is 1000.999..., and times written as millis / 1000.0
  // must read back as the same millis.
  if (value.is_number()) return std::llround(value.get<double>() * 1000.0);
  if (!value.is_string()) return std::nullopt;
  std::string s = value.get<std::string>();
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace hearth::control
