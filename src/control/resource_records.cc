#include "control/resource_records.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "common/crypto.h"
#include "common/strings.h"

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

Result<ListPage> FilterSortPage(const std::vector<metadata::Resource>& all,
                                const nlohmann::json& request, const ListRules& rules) {
  auto bound = [&](const char* key) -> std::optional<std::int64_t> {
    return request.contains(key) ? TimestampMillis(request[key]) : std::nullopt;
  };
  const auto created_after = bound("CreationTimeAfter");
  const auto created_before = bound("CreationTimeBefore");
  const auto modified_after = bound("LastModifiedTimeAfter");
  const auto modified_before = bound("LastModifiedTimeBefore");
  const std::string contains = AsciiLower(request.value("NameContains", ""));
  const std::string status = request.value("StatusEquals", "");
  std::vector<const metadata::Resource*> rows;
  for (const auto& r : all) {
    if (created_after &&
        (rules.creation_time_after_inclusive ? r.created_millis < *created_after
                                             : r.created_millis <= *created_after)) {
      continue;
    }
    if (created_before && r.created_millis >= *created_before) continue;
    if (modified_after && r.modified_millis <= *modified_after) continue;
    if (modified_before && r.modified_millis >= *modified_before) continue;
    if (!status.empty() && r.status != status) continue;
    if (!contains.empty() && AsciiLower(r.name).find(contains) == std::string::npos) continue;
    rows.push_back(&r);
  }
  const std::string sort_by = request.value("SortBy", std::string(rules.default_sort_by));
  const bool descending =
      request.value("SortOrder", std::string(rules.default_sort_order)) == "Descending";
  std::stable_sort(rows.begin(), rows.end(), [&](const auto* a, const auto* b) {
    if (sort_by == "Name") {
      const std::string la = AsciiLower(a->name), lb = AsciiLower(b->name);
      if (la != lb) return la < lb;
    } else if (sort_by == "Status" && a->status != b->status) {
      return a->status < b->status;
    }
    if (a->created_millis != b->created_millis) return a->created_millis < b->created_millis;
    return a->name < b->name;
  });
  if (descending) std::reverse(rows.begin(), rows.end());
  std::vector<std::string> names;
  names.reserve(rows.size());
  for (const auto* r : rows) names.push_back(r->name);
  ASSIGN_OR_RETURN(Page page, Paginate(request, names, rules.default_max_results));
  ListPage out;
  out.rows.assign(rows.begin() + static_cast<std::ptrdiff_t>(page.begin),
                  rows.begin() + static_cast<std::ptrdiff_t>(page.end));
  out.next_token = std::move(page.next_token);
  return out;
}

Result<metadata::Resource> FindResourceIgnoringCase(metadata::MetadataStore& store,
                                                    std::string_view kind, std::string_view name) {
  auto exact = store.Get(kind, name);
  if (exact.ok() || exact.status().code() != StatusCode::kNotFound) return exact;
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store.List(kind));
  for (auto& r : all) {
    if (EqualsIgnoringAsciiCase(r.name, name)) return std::move(r);
  }
  return NotFound(std::string(kind) + " " + std::string(name) + " does not exist");
}

Result<metadata::Resource> FindResourceIgnoringCase(metadata::MetadataStore& store,
                                                    std::string_view kind, std::string_view name,
                                                    const Status& missing) {
  auto found = FindResourceIgnoringCase(store, kind, name);
  if (!found.ok() && found.status().code() == StatusCode::kNotFound && !missing.ok()) {
    return missing;
  }
  return found;
}

Status DeleteIgnoringCase(metadata::MetadataStore& store, std::string_view kind,
                          std::string_view name, const Status& missing) {
  ASSIGN_OR_RETURN(metadata::Resource found, FindResourceIgnoringCase(store, kind, name, missing));
  Status deleted = store.Delete(kind, found.name);
  return deleted.code() == StatusCode::kNotFound ? missing : deleted;
}

Status CreateIfAbsentIgnoringCase(metadata::MetadataStore& store,
                                  const metadata::Resource& resource,
                                  const metadata::Transition& first, const Status& duplicate) {
  auto existing = FindResourceIgnoringCase(store, resource.kind, resource.name);
  if (existing.ok()) return duplicate;
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  Status created = store.Create(resource, first);
  return created.code() == StatusCode::kAlreadyExists ? duplicate : created;
}

Result<nlohmann::json> ListByNameAndCreationTime(metadata::MetadataStore& store, std::string_view kind,
                                       const nlohmann::json& request, const std::string& result_key,
                                       const std::string& name_key, const std::string& arn_key) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store.List(kind));
  ASSIGN_OR_RETURN(ListPage page,
                   FilterSortPage(all, request, {.creation_time_after_inclusive = true}));
  nlohmann::json summaries = nlohmann::json::array();
  for (const metadata::Resource* r : page.rows) {
    summaries.push_back({{name_key, r->name},
                         {arn_key, r->arn},
                         {"CreationTime", r->doc.value("CreationTime", 0.0)}});
  }
  nlohmann::json result = {{result_key, std::move(summaries)}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

}  // namespace hearth::control
