#include "storage/object_store.h"

#include <utility>

namespace hearth::storage {

Result<ObjectInfo> ObjectStore::PutObject(std::string_view bucket, std::string_view key,
                                          std::string_view data, const PutOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer, OpenForWrite(bucket, key, options));
  RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

Result<std::string> ObjectStore::GetObject(std::string_view bucket, std::string_view key) {
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, OpenForRead(bucket, key));
  std::string out;
  RETURN_IF_ERROR(reader->ReadAt(0, static_cast<std::size_t>(reader->info().size), &out));
  return out;
}

Result<S3Location> ParseS3Uri(std::string_view uri) {
  constexpr std::string_view kScheme = "s3://";
  auto invalid = [&] {
    return InvalidArgument("invalid S3 URI '" + std::string(uri) +
                           "': expected s3://<bucket>[/<key>]");
  };
  if (!uri.starts_with(kScheme)) return invalid();
  std::string_view rest = uri.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  S3Location location;
  location.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) location.key = std::string(rest.substr(slash + 1));
  if (location.bucket.empty()) return invalid();
  return location;
}

}  // namespace hearth::storage
