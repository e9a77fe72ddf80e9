#include "api/logs_api.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace hearth::api {
namespace {

using nlohmann::json;

constexpr char kInvalidParameter[] = "InvalidParameterException";

Status Invalid(std::string message) {
  return InvalidArgument(std::move(message), kInvalidParameter);
}

// AWS's wording for a model constraint, so messages read like CloudWatch's own.
Status ConstraintViolation(std::string_view field, std::string_view value,
                           std::string_view constraint) {
  return Invalid("1 validation error detected: Value '" + std::string(value) + "' at '" +
                 std::string(field) + "' failed to satisfy constraint: " + std::string(constraint));
}

// Store errors keep their reason; an InvalidArgument without one (a bad paging position, say)
// is still the client's fault, so it gets the Logs code too.
Status FromStore(const Status& status) {
  if (status.code() == StatusCode::kInvalidArgument && status.reason().empty()) {
    return Invalid(status.message());
  }
  return status;
}

// Log lines are arbitrary bytes; JSON responses must be UTF-8. Invalid sequences become U+FFFD
// rather than failing the whole page.
std::string ToValidUtf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    std::size_t length = 0;
    std::uint32_t min = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000;
    }
    bool valid = length != 0 && i + length <= in.size();
    std::uint32_t code = length == 0 ? 0 : (c & (0x7F >> length));
    for (std::size_t k = 1; valid && k < length; ++k) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      if ((cc & 0xC0) != 0x80) valid = false;
      code = (code << 6) | (cc & 0x3F);
    }
    valid = valid && code >= min && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF);
    if (valid) {
      out.append(in, i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// ---- typed, non-throwing access to request fields ----

class Request {
 public:
  explicit Request(const json& body) : body_(body) {}

  const json* Field(std::string_view name) const {
    auto it = body_.find(name);
    if (it == body_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Result<std::optional<std::string>> String(std::string_view name, std::size_t min_length,
                                            std::size_t max_length) const {
    const json* v = Field(name);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return Invalid("Value at '" + std::string(name) + "' must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() < min_length) {
      return ConstraintViolation(
          name, s,
          "Member must have length greater than or equal to " + std::to_string(min_length));
    }
    if (s.size() > max_length) {
      return ConstraintViolation(
          name, s, "Member must have length less than or equal to " + std::to_string(max_length));
    }
    return std::optional<std::string>(s);
  }

  Result<std::optional<std::int64_t>> Integer(std::string_view name, std::int64_t min,
                                              std::int64_t max) const {
    const json* v = Field(name);
    if (v == nullptr) return std::optional<std::int64_t>();
    if (!v->is_number_integer()) {
      return Invalid("Value at '" + std::string(name) + "' must be an integer");
    }
    if (v->is_number_unsigned() &&
        v->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return ConstraintViolation(
          name, v->dump(), "Member must have value less than or equal to " + std::to_string(max));
    }
    const auto n = v->get<std::int64_t>();
    if (n < min) {
      return ConstraintViolation(
          name, std::to_string(n),
          "Member must have value greater than or equal to " + std::to_string(min));
    }
    if (n > max) {
      return ConstraintViolation(
          name, std::to_string(n),
          "Member must have value less than or equal to " + std::to_string(max));
    }
    return std::optional<std::int64_t>(n);
  }

  Result<bool> Bool(std::string_view name, bool fallback) const {
    const json* v = Field(name);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) return Invalid("Value at '" + std::string(name) + "' must be a boolean");
    return v->get<bool>();
  }

  Result<std::vector<std::string>> StringList(std::string_view name, std::size_t min_items,
                                              std::size_t max_items) const {
    std::vector<std::string> out;
    const json* v = Field(name);
    if (v == nullptr) return out;
    if (!v->is_array()) return Invalid("Value at '" + std::string(name) + "' must be a list");
    if (v->size() < min_items || v->size() > max_items) {
      return ConstraintViolation(name, v->dump(),
                                 "Member must have length between " + std::to_string(min_items) +
                                     " and " + std::to_string(max_items));
    }
    for (const json& item : *v) {
      if (!item.is_string()) {
        return Invalid("Every value in '" + std::string(name) + "' must be a string");
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }

 private:
  const json& body_;
};

constexpr std::int64_t kMaxTimestamp = std::numeric_limits<std::int64_t>::max();

bool IsGroupNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == '/' || c == '#';
}

Status CheckGroupName(std::string_view field, const std::string& name) {
  if (!std::all_of(name.begin(), name.end(), IsGroupNameChar)) {
    return ConstraintViolation(field, name,
                               "Member must satisfy regular expression pattern: "
                               "[\\.\\-_/#A-Za-z0-9]+");
  }
  return Status::Ok();
}

Status CheckStreamName(std::string_view field, const std::string& name) {
  if (name.find_first_of(":*") != std::string::npos) {
    return ConstraintViolation(field, name,
                               "Member must satisfy regular expression pattern: [^:*]*");
  }
  return Status::Ok();
}

Result<std::optional<std::string>> OptionalStreamName(const Request& request,
                                                      std::string_view field) {
  ASSIGN_OR_RETURN(auto name, request.String(field, 1, 512));
  if (name) RETURN_IF_ERROR(CheckStreamName(field, *name));
  return name;
}

// A log group's name from a logGroupIdentifier: the name itself or a log group ARN
// ("arn:aws:logs:<region>:<account>:log-group:<name>", optionally ending in ":*").
std::string GroupNameFromIdentifier(std::string id) {
  constexpr std::string_view kMarker = ":log-group:";
  if (id.rfind("arn:", 0) != 0) return id;
  std::size_t at = id.find(kMarker);
  if (at == std::string::npos) return id;
  id = id.substr(at + kMarker.size());
  if (id.size() >= 2 && id.compare(id.size() - 2, 2, ":*") == 0) id.resize(id.size() - 2);
  return id;
}

// logGroupName, or logGroupIdentifier (a name or a log group ARN).
Result<std::string> RequiredGroup(const Request& request) {
  ASSIGN_OR_RETURN(auto name, request.String("logGroupName", 1, 512));
  ASSIGN_OR_RETURN(auto identifier, request.String("logGroupIdentifier", 1, 2048));
  if (name && identifier) {
    return Invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.");
  }
  if (identifier) {
    std::string id = GroupNameFromIdentifier(*identifier);
    RETURN_IF_ERROR(CheckGroupName("logGroupIdentifier", id));
    return id;
  }
  if (!name) return Invalid("Should provide either logGroupName or logGroupIdentifier.");
  RETURN_IF_ERROR(CheckGroupName("logGroupName", *name));
  return *name;
}

// Offsets into a sorted listing, for the Describe* operations. Local listings are small, and an
// offset stays meaningful while the caller pages.
Result<std::size_t> OffsetToken(const Request& request) {
  ASSIGN_OR_RETURN(auto token, request.String("nextToken", 1, 4096));
  if (!token) return std::size_t{0};
  const std::string& t = *token;
  if (t.size() < 3 || t.compare(0, 2, "o/") != 0 ||
      !std::all_of(t.begin() + 2, t.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      t.size() > 20) {
    return Invalid("The specified nextToken is invalid.");
  }
  return static_cast<std::size_t>(std::stoull(t.substr(2)));
}

std::string GroupArn(const AccountContext& account, std::string_view group) {
  return "arn:" + account.partition + ":logs:" + account.region + ":" + account.account_id +
         ":log-group:" + std::string(group);
}

// ---- DescribeLogGroups ----

Result<json> DescribeLogGroups(metadata::LogStore& store, const AccountContext& account,
                               const Request& request) {
  ASSIGN_OR_RETURN(auto prefix, request.String("logGroupNamePrefix", 1, 512));
  if (prefix) RETURN_IF_ERROR(CheckGroupName("logGroupNamePrefix", *prefix));
  ASSIGN_OR_RETURN(auto pattern, request.String("logGroupNamePattern", 0, 512));
  ASSIGN_OR_RETURN(auto identifiers, request.StringList("logGroupIdentifiers", 1, 50));
  if (prefix && pattern) {
    return Invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive.");
  }
  if (!identifiers.empty() && (prefix || pattern)) {
    return Invalid(
        "logGroupIdentifiers cannot be combined with logGroupNamePrefix or "
        "logGroupNamePattern.");
  }
  ASSIGN_OR_RETURN(auto limit, request.Integer("limit", 1, 50));
  ASSIGN_OR_RETURN(std::size_t offset, OffsetToken(request));

  auto listed = store.ListGroups(prefix.value_or(""));
  if (!listed.ok()) return FromStore(listed.status());

  // logGroupNamePattern is a case-insensitive substring match in CloudWatch.
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  const std::string needle = lower(pattern.value_or(""));
  std::set<std::string> wanted;
  for (const std::string& id : identifiers) wanted.insert(GroupNameFromIdentifier(id));

  std::vector<metadata::LogGroupInfo> groups;
  for (auto& g : *listed) {
    if (!needle.empty() && lower(g.name).find(needle) == std::string::npos) continue;
    if (!wanted.empty() && wanted.count(g.name) == 0) continue;
    groups.push_back(std::move(g));
  }

  const std::size_t page = static_cast<std::size_t>(limit.value_or(50));
  json out = {{"logGroups", json::array()}};
  for (std::size_t i = offset; i < groups.size() && i < offset + page; ++i) {
    const auto& g = groups[i];
    const std::string arn = GroupArn(account, g.name);
    out["logGroups"].push_back({{"logGroupName", ToValidUtf8(g.name)},
                                {"creationTime", g.creation_millis},
                                {"metricFilterCount", 0},
                                {"arn", ToValidUtf8(arn + ":*")},
                                {"logGroupArn", ToValidUtf8(arn)},
                                {"storedBytes", g.stored_bytes},
                                {"logGroupClass", "STANDARD"}});
  }
  if (offset + page < groups.size()) out["nextToken"] = "o/" + std::to_string(offset + page);
  return out;
}

// ---- DescribeLogStreams ----

Result<json> DescribeLogStreams(metadata::LogStore& store, const AccountContext& account,
                                const Request& request) {
  ASSIGN_OR_RETURN(std::string group, RequiredGroup(request));
  ASSIGN_OR_RETURN(auto prefix, OptionalStreamName(request, "logStreamNamePrefix"));
  ASSIGN_OR_RETURN(auto order_by, request.String("orderBy", 0, 64));
  if (order_by && *order_by != "LogStreamName" && *order_by != "LastEventTime") {
    return ConstraintViolation("orderBy", *order_by,
                               "Member must satisfy enum value set: [LogStreamName, "
                               "LastEventTime]");
  }
  const bool by_time = order_by && *order_by == "LastEventTime";
  if (by_time && prefix) {
    return Invalid("Cannot order by LastEventTime with a logStreamNamePrefix.");
  }
  ASSIGN_OR_RETURN(bool descending, request.Bool("descending", false));
  ASSIGN_OR_RETURN(auto limit, request.Integer("limit", 1, 50));
  ASSIGN_OR_RETURN(std::size_t offset, OffsetToken(request));

  auto listed = store.ListStreams(group, prefix.value_or(""));
  if (!listed.ok()) return FromStore(listed.status());
  std::vector<metadata::LogStreamInfo> streams = std::move(listed).value();
  if (by_time) {
    // Streams without events sort as oldest; the store's name order breaks ties.
    std::stable_sort(streams.begin(), streams.end(), [](const auto& a, const auto& b) {
      return a.last_event_millis.value_or(-1) < b.last_event_millis.value_or(-1);
    });
  }
  if (descending) std::reverse(streams.begin(), streams.end());

  const std::size_t page = static_cast<std::size_t>(limit.value_or(50));
  const std::string group_arn = GroupArn(account, group);
  json out = {{"logStreams", json::array()}};
  for (std::size_t i = offset; i < streams.size() && i < offset + page; ++i) {
    const auto& s = streams[i];
    json entry = {{"logStreamName", ToValidUtf8(s.name)},
                  {"creationTime", s.creation_millis},
                  {"arn", ToValidUtf8(group_arn + ":log-stream:" + s.name)},
                  {"storedBytes", s.stored_bytes}};
    if (s.first_event_millis) entry["firstEventTimestamp"] = *s.first_event_millis;
    if (s.last_event_millis) entry["lastEventTimestamp"] = *s.last_event_millis;
    if (s.last_ingestion_millis > 0) entry["lastIngestionTime"] = s.last_ingestion_millis;
    out["logStreams"].push_back(std::move(entry));
  }
  if (offset + page < streams.size()) out["nextToken"] = "o/" + std::to_string(offset + page);
  return out;
}

// ---- GetLogEvents ----

struct SequenceToken {
  bool forward = true;
  std::int64_t sequence = 0;
};

Result<std::optional<SequenceToken>> ParseSequenceToken(const Request& request) {
  ASSIGN_OR_RETURN(auto token, request.String("nextToken", 1, 4096));
  if (!token) return std::optional<SequenceToken>();
  const std::string& t = *token;
  const bool well_formed =
      t.size() >= 3 && t.size() <= 20 && (t[0] == 'f' || t[0] == 'b') && t[1] == '/' &&
      std::all_of(t.begin() + 2, t.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!well_formed) return Invalid("The specified nextToken is invalid.");
  return std::optional<SequenceToken>(
      SequenceToken{.forward = t[0] == 'f', .sequence = std::stoll(t.substr(2))});
}

Result<json> GetLogEvents(metadata::LogStore& store, const Request& request) {
  ASSIGN_OR_RETURN(std::string group, RequiredGroup(request));
  ASSIGN_OR_RETURN(auto stream, OptionalStreamName(request, "logStreamName"));
  if (!stream) return Invalid("Value at 'logStreamName' must not be null");
  ASSIGN_OR_RETURN(auto start, request.Integer("startTime", 0, kMaxTimestamp));
  ASSIGN_OR_RETURN(auto end, request.Integer("endTime", 0, kMaxTimestamp));
  ASSIGN_OR_RETURN(auto limit, request.Integer("limit", 1, 10000));
  ASSIGN_OR_RETURN(bool from_head, request.Bool("startFromHead", false));
  ASSIGN_OR_RETURN(auto token, ParseSequenceToken(request));

  metadata::GetEventsQuery query;
  query.start_millis = start;
  query.end_millis = end;
  query.limit = static_cast<int>(limit.value_or(10000));
  query.from_head = from_head;
  if (token && token->forward) query.after_sequence = token->sequence;
  if (token && !token->forward) query.before_sequence = token->sequence;

  auto events = store.GetEvents(group, *stream, query);
  if (!events.ok()) return FromStore(events.status());

  json out = {{"events", json::array()}};
  for (const auto& e : *events) {
    out["events"].push_back({{"timestamp", e.timestamp_millis},
                             {"message", ToValidUtf8(e.message)},
                             {"ingestionTime", e.ingestion_millis}});
  }
  std::string forward, backward;
  if (!events->empty()) {
    forward = "f/" + std::to_string(events->back().sequence);
    backward = "b/" + std::to_string(events->front().sequence);
  } else if (token && token->forward) {
    // Nothing new: hand the same forward token back (the end-of-stream signal).
    forward = "f/" + std::to_string(token->sequence);
    backward = "b/" + std::to_string(token->sequence + 1);
  } else if (token) {
    backward = "b/" + std::to_string(token->sequence);
    forward = "f/" + std::to_string(std::max<std::int64_t>(token->sequence - 1, 0));
  } else {
    // An empty read without a token: start at the beginning, so new events are found later.
    forward = "f/0";
    backward = "b/1";
  }
  out["nextForwardToken"] = forward;
  out["nextBackwardToken"] = backward;
  return out;
}

// ---- FilterLogEvents ----

// CloudWatch's term syntax for unstructured logs: space-separated terms that must all appear,
// "quoted phrases" as one term, ?term for "any of these", -term to exclude. Matching is a
// case-sensitive substring test, as in CloudWatch.
struct TermPattern {
  std::vector<std::string> required;
  std::vector<std::string> any_of;
  std::vector<std::string> excluded;

  bool Matches(const std::string& message) const {
    auto has = [&](const std::string& term) { return message.find(term) != std::string::npos; };
    if (!std::all_of(required.begin(), required.end(), has)) return false;
    if (!any_of.empty() && !std::any_of(any_of.begin(), any_of.end(), has)) return false;
    return std::none_of(excluded.begin(), excluded.end(), has);
  }
};

Result<TermPattern> ParseFilterPattern(const std::string& text) {
  TermPattern pattern;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  skip_space();
  if (i < text.size() && (text[i] == '{' || text[i] == '[')) {
    return Invalid(
        "Value at 'filterPattern' uses JSON or space-delimited filter syntax, which "
        "Hearth does not support; use terms or a \"quoted phrase\"");
  }
  while (i < text.size()) {
    char kind = ' ';
    if (text[i] == '?' || text[i] == '-') kind = text[i++];
    std::string term;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          term.push_back(text[i + 1]);
          i += 2;
        } else if (text[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          term.push_back(text[i++]);
        }
      }
      if (!closed) return Invalid("Value at 'filterPattern' has an unterminated quoted phrase");
    } else {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t') term.push_back(text[i++]);
    }
    if (term.empty()) {
      return Invalid("Value at 'filterPattern' has an empty term after '" + std::string(1, kind) +
                     "'");
    }
    if (kind == '?') {
      pattern.any_of.push_back(std::move(term));
    } else if (kind == '-') {
      pattern.excluded.push_back(std::move(term));
    } else {
      pattern.required.push_back(std::move(term));
    }
    skip_space();
  }
  return pattern;
}

Result<json> FilterLogEvents(metadata::LogStore& store, const Request& request) {
  ASSIGN_OR_RETURN(std::string group, RequiredGroup(request));
  ASSIGN_OR_RETURN(auto names, request.StringList("logStreamNames", 1, 100));
  for (const auto& n : names) {
    if (n.empty() || n.size() > 512) {
      return ConstraintViolation("logStreamNames", n, "Member must have length between 1 and 512");
    }
    RETURN_IF_ERROR(CheckStreamName("logStreamNames", n));
  }
  ASSIGN_OR_RETURN(auto prefix, OptionalStreamName(request, "logStreamNamePrefix"));
  if (!names.empty() && prefix) {
    return Invalid("Cannot specify both logStreamNames and logStreamNamePrefix.");
  }
  ASSIGN_OR_RETURN(auto start, request.Integer("startTime", 0, kMaxTimestamp));
  ASSIGN_OR_RETURN(auto end, request.Integer("endTime", 0, kMaxTimestamp));
  ASSIGN_OR_RETURN(auto pattern_text, request.String("filterPattern", 0, 1024));
  ASSIGN_OR_RETURN(TermPattern pattern, ParseFilterPattern(pattern_text.value_or("")));
  ASSIGN_OR_RETURN(auto limit_field, request.Integer("limit", 1, 10000));
  ASSIGN_OR_RETURN(auto token, request.String("nextToken", 1, 4096));
  std::optional<std::int64_t> after;
  if (token) {
    const std::string& t = *token;
    if (t.size() < 3 || t.size() > 20 || t.compare(0, 2, "e/") != 0 ||
        !std::all_of(t.begin() + 2, t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Invalid("The specified nextToken is invalid.");
    }
    after = std::stoll(t.substr(2));
  }
  const auto limit = static_cast<std::size_t>(limit_field.value_or(10000));

  // Listing the streams also answers ResourceNotFoundException for an unknown group.
  auto streams = store.ListStreams(group, prefix.value_or(""));
  if (!streams.ok()) return FromStore(streams.status());
  const std::set<std::string> named(names.begin(), names.end());

  // The store filters on one substring; the longest required term narrows the scan most, and
  // the full pattern is applied here. One extra match tells whether another page exists.
  metadata::FilterQuery query;
  query.stream_names = names;
  query.stream_prefix = prefix.value_or("");
  query.start_millis = start;
  query.end_millis = end;
  for (const auto& term : pattern.required) {
    if (term.size() > query.contains.size()) query.contains = term;
  }
  const bool store_filter_is_exact =
      pattern.required.size() <= 1 && pattern.any_of.empty() && pattern.excluded.empty();
  const std::size_t batch =
      store_filter_is_exact ? limit + 1 : std::max<std::size_t>(limit + 1, 1000);
  query.limit = static_cast<int>(batch);
  query.after_global_sequence = after;

  std::vector<metadata::LogEvent> matched;
  while (matched.size() <= limit) {
    auto events = store.Filter(group, query);
    if (!events.ok()) return FromStore(events.status());
    for (auto& e : *events) {
      if (matched.size() > limit) break;
      if (store_filter_is_exact || pattern.Matches(e.message)) matched.push_back(std::move(e));
    }
    if (events->size() < batch) break;
    query.after_global_sequence = events->back().sequence;
  }

  const bool more = matched.size() > limit;
  if (more) matched.resize(limit);
  json out = {{"events", json::array()}, {"searchedLogStreams", json::array()}};
  for (const auto& e : matched) {
    out["events"].push_back({{"logStreamName", ToValidUtf8(e.stream)},
                             {"timestamp", e.timestamp_millis},
                             {"message", ToValidUtf8(e.message)},
                             {"ingestionTime", e.ingestion_millis},
                             {"eventId", std::to_string(e.sequence)}});
  }
  for (const auto& s : *streams) {
    if (!named.empty() && named.count(s.name) == 0) continue;
    out["searchedLogStreams"].push_back(
        {{"logStreamName", ToValidUtf8(s.name)}, {"searchedCompletely", !more}});
  }
  if (more && !matched.empty()) out["nextToken"] = "e/" + std::to_string(matched.back().sequence);
  return out;
}

std::string_view StripTargetPrefix(std::string_view operation) {
  if (operation.substr(0, kLogsTargetPrefix.size()) == kLogsTargetPrefix) {
    operation.remove_prefix(kLogsTargetPrefix.size());
  }
  return operation;
}

}  // namespace

Result<json> HandleLogsOperation(metadata::LogStore& store, const AccountContext& account,
                                 std::string_view operation, const json& input) {
  static const json kEmpty = json::object();
  const json& body = input.is_null() ? kEmpty : input;
  const std::string_view op = StripTargetPrefix(operation);
  // The typed accessors never throw; this is the line no library exception crosses, should
  // one slip through anyway.
  try {
    if (!body.is_object()) return Invalid("The request body must be a JSON object");
    const Request request(body);
    if (op == "DescribeLogGroups") return DescribeLogGroups(store, account, request);
    if (op == "DescribeLogStreams") return DescribeLogStreams(store, account, request);
    if (op == "GetLogEvents") return GetLogEvents(store, request);
    if (op == "FilterLogEvents") return FilterLogEvents(store, request);
    return Unimplemented("Operation " + std::string(op) +
                             " is not supported by Hearth's "
                             "CloudWatch Logs API",
                         "UnknownOperationException");
  } catch (const std::exception& e) {
    return Internal(std::string("CloudWatch Logs ") + std::string(op) + " failed: " + e.what());
  }
}

Result<json> HandleLogsOperation(metadata::LogStore& store, std::string_view operation,
                                 const json& input) {
  return HandleLogsOperation(store, AccountContext{}, operation, input);
}

}  // namespace hearth::api
