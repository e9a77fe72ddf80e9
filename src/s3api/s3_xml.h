// XML bodies of the S3 REST API: builders for responses and parsers for the request bodies
// Hearth reads (CreateBucketConfiguration, Delete, CompleteMultipartUpload). pugixml does the
// escaping and parsing; it does not throw, and parse failures come back as MalformedXML.
//
// Thread safety: values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "common/status.h"
#include "storage/object_store.h"

namespace hearth::s3api {

inline constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

// A response document: `<?xml version="1.0" encoding="UTF-8"?><Root xmlns="...">`.
class XmlResponse {
 public:
  explicit XmlResponse(std::string_view root_name, bool with_namespace = true);
  pugi::xml_node root() { return root_; }
  std::string ToString() const;

 private:
  pugi::xml_document doc_;
  pugi::xml_node root_;
};

// Appends <name>text</name> to `parent` and returns the new element.
pugi::xml_node AddText(pugi::xml_node parent, std::string_view name, std::string_view text);
pugi::xml_node AddElement(pugi::xml_node parent, std::string_view name);

// <Error><Code/><Message/><Resource/><RequestId/></Error> (S3 puts no namespace on it).
std::string ErrorXml(std::string_view code, std::string_view message, std::string_view resource,
                     std::string_view request_id);

// CreateBucketConfiguration; returns the LocationConstraint (empty when absent). An empty body
// is valid.
Result<std::string> ParseCreateBucketConfiguration(std::string_view body);

struct DeleteObjectsRequest {
  bool quiet = false;
  std::vector<std::string> keys;
};
// <Delete><Quiet/><Object><Key/>[<VersionId/>]</Object>...</Delete>; 1 to 1000 objects.
Result<DeleteObjectsRequest> ParseDeleteObjects(std::string_view body);

// <CompleteMultipartUpload><Part><PartNumber/><ETag/>...</Part>...; at least one part.
// Per-part checksum elements are accepted and ignored.
Result<std::vector<storage::CompletedPart>> ParseCompleteMultipartUpload(std::string_view body);

}  // namespace hearth::s3api
