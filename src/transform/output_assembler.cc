#include "transform/output_assembler.h"

#include <fmt/format.h>

namespace hearth::transform {

Result<AssembleWith> ParseAssembleWith(std::string_view value, std::string_view field) {
  if (value == "None") return AssembleWith::kNone;
  if (value == "Line") return AssembleWith::kLine;
  return InvalidArgument(fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must "
      "satisfy enum value set: [Line, None]",
      value, field));
}

void AppendAssembled(AssembleWith assemble, std::string_view bytes, std::string* out) {
  out->append(bytes);
  if (assemble == AssembleWith::kLine && (bytes.empty() || bytes.back() != '\n')) {
    out->push_back('\n');
  }
}

}  // namespace hearth::transform
