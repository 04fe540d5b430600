#pragma once

// Small XML answers (S3's) read with expat: every element's text with the
// path of names that leads to it, entities decoded.

#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace vigil {

/// The text of one element: `path` names it and its ancestors from the
/// root, '/'-separated ("ListBucketResult/Contents/Key").
struct xml_text {
  std::string path;
  std::string text;
};

/// The texts of the elements of `doc` that hold text, in document order;
/// errc::malformed with expat's reason and line for a document that is
/// not well-formed.
caf::expected<std::vector<xml_text>> xml_texts(std::string_view doc);

/// The first text whose path is `name` or ends with "/" + `name`; empty
/// when there is none.
std::string xml_first(const std::vector<xml_text>& texts,
                      std::string_view name);

} // namespace vigil
