#include "control/image_registry.h"

#include <unistd.h>

#include "common/clock.h"

namespace hearth::control {

namespace {
constexpr std::string_view kImageKind = "Image";

// "acct.dkr.ecr.region.amazonaws.com/repo:tag" → "repo"; "hearth/kmeans" → "" (not ECR).
std::string EcrRepository(std::string_view image) {
  std::size_t slash = image.find('/');
  if (slash == std::string_view::npos) return "";
  std::string_view host = image.substr(0, slash);
  if (host.find(".dkr.ecr.") == std::string_view::npos) return "";
  std::string_view repo = image.substr(slash + 1);
  std::size_t at = repo.find('@');
  if (at != std::string_view::npos) repo = repo.substr(0, at);
  std::size_t colon = repo.find(':');
  if (colon != std::string_view::npos) repo = repo.substr(0, colon);
  return std::string(repo);
}

// BYO names are matched with and without a ":latest" tag.
std::string CanonicalName(std::string_view image) {
  std::string s(image);
  std::size_t slash = s.rfind('/');
  std::size_t colon = s.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    s += ":latest";
  }
  return s;
}
}  // namespace

ImageRegistry::ImageRegistry(metadata::MetadataStore& store,
                             std::map<std::string, BuiltinImage> builtin_algorithms)
    : store_(store), builtin_algorithms_(std::move(builtin_algorithms)) {}

Result<ResolvedImage> ImageRegistry::Resolve(std::string_view image, std::string_view field) const {
  ResolvedImage resolved;
  resolved.name = std::string(image);
  std::string_view short_name = image;
  if (short_name.substr(0, 7) == "hearth/") {
    short_name.remove_prefix(7);
    std::size_t colon = short_name.find(':');
    if (colon != std::string_view::npos) short_name = short_name.substr(0, colon);
    if (auto it = builtin_algorithms_.find(std::string(short_name));
        it != builtin_algorithms_.end()) {
      resolved.builtin = true;
      resolved.algorithm = it->first;
      resolved.metric_definitions = it->second.metric_definitions;
      return resolved;
    }
  }
  std::string repo = EcrRepository(image);
  if (!repo.empty()) {
    for (const auto& [algo, builtin] : builtin_algorithms_) {
      for (const auto& r : builtin.repositories) {
        if (r == repo) {
          resolved.builtin = true;
          resolved.algorithm = algo;
          resolved.metric_definitions = builtin.metric_definitions;
          return resolved;
        }
      }
    }
  }
  auto found = store_.Get(kImageKind, CanonicalName(image));
  if (found.ok()) {
    resolved.program_dir = found->doc.value("Path", "");
    return resolved;
  }
  std::string known;
  for (const auto& [algo, builtin] : builtin_algorithms_) {
    known += (known.empty() ? "" : ", ") + ("hearth/" + algo);
  }
  return InvalidArgument("The image '" + std::string(image) + "' given at '" + std::string(field) +
                             "' does not exist. Use a built-in algorithm image" +
                             (known.empty() ? "" : " (" + known + ")") +
                             " or register a local image directory with "
                             "`hearth image register NAME DIR`.",
                         "ValidationException");
}

Status ImageRegistry::RegisterDirectory(std::string_view name, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(dir, ec);
  if (ec || !std::filesystem::is_directory(abs, ec)) {
    return InvalidArgument("image directory '" + dir.string() + "' does not exist");
  }
  bool has_entry = false;
  for (const char* entry : {"train", "serve"}) {
    if (::access((abs / entry).c_str(), X_OK) == 0) has_entry = true;
  }
  if (!has_entry) {
    return InvalidArgument("image directory '" + abs.string() +
                           "' has no executable 'train' or 'serve' entry point");
  }
  metadata::Resource r;
  r.kind = std::string(kImageKind);
  r.name = CanonicalName(name);
  r.arn = r.name;
  r.status = "Registered";
  r.created_millis = r.modified_millis = NowMillis();
  r.doc = {{"ImageName", r.name}, {"Path", abs.string()}};
  auto existing = store_.Get(kImageKind, r.name);
  if (existing.ok()) {
    r.version = existing->version;
    r.created_millis = existing->created_millis;
    auto updated = store_.Update(r, std::nullopt);
    return updated.ok() ? Status::Ok() : updated.status();
  }
  return store_.Create(r, {.status = "Registered", .at_millis = r.created_millis});
}

Result<std::vector<std::pair<std::string, std::string>>> ImageRegistry::ListRegistered() const {
  ASSIGN_OR_RETURN(auto all, store_.List(kImageKind));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : all) out.emplace_back(r.name, r.doc.value("Path", ""));
  return out;
}

}  // namespace hearth::control
