// Output assembly: how the `.out` object is built from responses (TransformOutput.AssembleWith).
//
//   None  "To concatenate the results in binary format": bytes appended exactly as received.
//   Line  "To add a newline character at the end of every transformed record": each response
//         (or, when DataProcessing rewrote it, each record) is followed by '\n' unless it
//         already ends with one. The API docs do not say what happens when it does; adding
//         nothing keeps one line per record (an empty response still gets its '\n').
//
// Responses are appended in record order (Payload::first_record); the controller keeps the
// order when requests run concurrently. Appending to a caller's string lets the controller
// flush parts of a multipart upload as they fill.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace hearth::transform {

enum class AssembleWith { kNone, kLine };

// "None" or "Line"; InvalidArgument naming `field` (e.g. "TransformOutput.AssembleWith").
Result<AssembleWith> ParseAssembleWith(std::string_view value, std::string_view field);

// Appends one response body, or one record written by DataProcessing::ProcessResponse, to
// *out as `assemble` says.
void AppendAssembled(AssembleWith assemble, std::string_view bytes, std::string* out);

}  // namespace hearth::transform
