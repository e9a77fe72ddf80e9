#include "s3api/s3_xml.h"

#include <charconv>

namespace hearth::s3api {

namespace {

Status MalformedXml(std::string_view why) {
  return InvalidArgument(
      "The XML you provided was not well-formed or did not validate against our published "
      "schema: " +
          std::string(why),
      "MalformedXML");
}

// Keys may be made of spaces only; keep whitespace when it is an element's only content.
constexpr unsigned kParseOptions = pugi::parse_default | pugi::parse_ws_pcdata_single;

Result<pugi::xml_node> ParseRoot(pugi::xml_document& doc, std::string_view body,
                                 std::string_view root_name) {
  pugi::xml_parse_result parsed = doc.load_buffer(body.data(), body.size(), kParseOptions);
  if (!parsed) return MalformedXml(parsed.description());
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != root_name) {
    return MalformedXml("expected root element " + std::string(root_name));
  }
  return root;
}

class StringWriter : public pugi::xml_writer {
 public:
  explicit StringWriter(std::string* out) : out_(out) {}
  void write(const void* data, size_t size) override {
    out_->append(static_cast<const char*>(data), size);
  }

 private:
  std::string* out_;
};

}  // namespace

XmlResponse::XmlResponse(std::string_view root_name, bool with_namespace) {
  pugi::xml_node decl = doc_.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  root_ = doc_.append_child(std::string(root_name).c_str());
  if (with_namespace) root_.append_attribute("xmlns") = std::string(kS3Namespace).c_str();
}

std::string XmlResponse::ToString() const {
  std::string out;
  StringWriter writer(&out);
  doc_.save(writer, "", pugi::format_raw, pugi::encoding_utf8);
  return out;
}

pugi::xml_node AddElement(pugi::xml_node parent, std::string_view name) {
  return parent.append_child(std::string(name).c_str());
}

pugi::xml_node AddText(pugi::xml_node parent, std::string_view name, std::string_view text) {
  pugi::xml_node node = AddElement(parent, name);
  node.append_child(pugi::node_pcdata).set_value(std::string(text).c_str());
  return node;
}

std::string ErrorXml(std::string_view code, std::string_view message, std::string_view resource,
                     std::string_view request_id) {
  XmlResponse doc("Error", /*with_namespace=*/false);
  AddText(doc.root(), "Code", code);
  AddText(doc.root(), "Message", message);
  AddText(doc.root(), "Resource", resource);
  AddText(doc.root(), "RequestId", request_id);
  return doc.ToString();
}

Result<std::string> ParseCreateBucketConfiguration(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::string();
  pugi::xml_document doc;
  ASSIGN_OR_RETURN(pugi::xml_node root, ParseRoot(doc, body, "CreateBucketConfiguration"));
  return std::string(root.child("LocationConstraint").child_value());
}

Result<DeleteObjectsRequest> ParseDeleteObjects(std::string_view body) {
  pugi::xml_document doc;
  ASSIGN_OR_RETURN(pugi::xml_node root, ParseRoot(doc, body, "Delete"));
  DeleteObjectsRequest request;
  std::string_view quiet = root.child("Quiet").child_value();
  request.quiet = quiet == "true" || quiet == "True" || quiet == "TRUE";
  for (pugi::xml_node object : root.children("Object")) {
    pugi::xml_node key = object.child("Key");
    if (!key) return MalformedXml("an Object has no Key");
    request.keys.emplace_back(key.child_value());
  }
  if (request.keys.empty()) return MalformedXml("Delete names no Object");
  if (request.keys.size() > 1000) return MalformedXml("Delete names more than 1000 objects");
  return request;
}

Result<std::vector<storage::CompletedPart>> ParseCompleteMultipartUpload(std::string_view body) {
  pugi::xml_document doc;
  ASSIGN_OR_RETURN(pugi::xml_node root, ParseRoot(doc, body, "CompleteMultipartUpload"));
  std::vector<storage::CompletedPart> parts;
  for (pugi::xml_node part : root.children("Part")) {
    std::string_view number = part.child("PartNumber").child_value();
    storage::CompletedPart completed;
    auto [end, ec] =
        std::from_chars(number.data(), number.data() + number.size(), completed.part_number);
    if (number.empty() || ec != std::errc() || end != number.data() + number.size()) {
      return MalformedXml("PartNumber is not an integer");
    }
    if (!part.child("ETag")) return MalformedXml("a Part has no ETag");
    completed.etag = part.child("ETag").child_value();
    parts.push_back(std::move(completed));
  }
  if (parts.empty()) return MalformedXml("CompleteMultipartUpload names no Part");
  return parts;
}

}  // namespace hearth::s3api
