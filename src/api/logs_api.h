// The CloudWatch Logs read API (JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`) over a
// metadata::LogStore: what `aws logs ...`, boto3's "logs" client and the SageMaker SDK's
// `logs=True` call to read training output.
//
// Operations: DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents. Shapes
// follow botocore's logs/2014-03-28 model; fields this store cannot honour (accounts, classes,
// unmask) are ignored.
//
// Paging tokens:
//   - GetLogEvents: "f/<sequence>" pages forward (events after that sequence), "b/<sequence>"
//     backward (events before it). As in CloudWatch, a forward read that finds nothing new
//     returns the very token it was given, which is how `aws logs get-log-events` callers and
//     the SageMaker SDK know they reached the end; polling with it later picks up new events.
//   - FilterLogEvents: nextToken is present only when more events match.
//   - DescribeLogGroups / DescribeLogStreams: nextToken is present only when more remain.
//
// Errors: a non-OK Status whose `reason` is the Logs wire error code, for the error map to put
// in `__type`: "InvalidParameterException" (kInvalidArgument; the message names the field),
// "ResourceNotFoundException" (kNotFound), "UnknownOperationException" (kUnimplemented).
// No exception escapes.
//
// Thread safety: thread safe as far as `store` is (LogStore implementations are).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "metadata/log_store.h"

namespace hearth::api {

// X-Amz-Target values of this API start with this.
inline constexpr std::string_view kLogsTargetPrefix = "Logs_20140328.";

// Runs `operation` ("GetLogEvents"; the full "Logs_20140328.GetLogEvents" target is accepted
// too) with the parsed request body `input` (an object; null counts as {}), returning the
// response body. ARNs in responses use `account`. `store` is borrowed for the call.
Result<nlohmann::json> HandleLogsOperation(metadata::LogStore& store, const AccountContext& account,
                                           std::string_view operation, const nlohmann::json& input);

// As above, with the default AccountContext.
Result<nlohmann::json> HandleLogsOperation(metadata::LogStore& store, std::string_view operation,
                                           const nlohmann::json& input);

}  // namespace hearth::api
