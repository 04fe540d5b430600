#include "messages/form_data.hpp"

#include "messages/ascii.hpp"
#include "messages/errors.hpp"
#include "messages/percent_encoding.hpp"

namespace vigil {

namespace {

caf::error bad(std::string text) {
  return caf::make_error(errc::malformed, std::move(text));
}

/// The value of parameter `name` in a header value ("form-data;
/// name=\"x\"; filename=\"a\""), unquoted; empty when absent.
std::string header_param(std::string_view value, std::string_view name) {
  size_t i = 0;
  while ((i = value.find(';', i)) != std::string_view::npos) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t'))
      ++i;
    auto eq = value.find('=', i);
    if (eq == std::string_view::npos)
      return {};
    if (ascii_lower(value.substr(i, eq - i)) != name)
      continue;
    auto v = value.substr(eq + 1);
    if (!v.empty() && v.front() == '"') {
      std::string out;
      for (size_t k = 1; k < v.size() && v[k] != '"'; ++k) {
        if (v[k] == '\\' && k + 1 < v.size())
          ++k;
        out += v[k];
      }
      return out;
    }
    auto end = v.find(';');
    return std::string{v.substr(0, end)};
  }
  return {};
}

caf::expected<form_fields> parse_multipart(std::string_view boundary,
                                           std::string_view body) {
  form_fields out;
  std::string delim = "--" + std::string{boundary};
  auto pos = body.find(delim);
  if (pos == std::string_view::npos)
    return bad("multipart/form-data: the boundary is not in the body");
  pos += delim.size();
  for (;;) {
    if (body.substr(pos, 2) == "--")
      return out; // the closing delimiter
    if (body.substr(pos, 2) != "\r\n")
      return bad("multipart/form-data: a delimiter is not followed by a "
                 "line break");
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos)
      return bad("multipart/form-data: a part's headers do not end");
    auto headers = body.substr(pos, head_end - pos);
    auto next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string_view::npos)
      return bad("multipart/form-data: the body ends inside a part");
    auto content = body.substr(head_end + 4, next - head_end - 4);
    std::string name, filename;
    size_t h = 0;
    while (h <= headers.size()) {
      auto eol = headers.find("\r\n", h);
      auto line = headers.substr(h, eol == std::string_view::npos
                                      ? std::string_view::npos
                                      : eol - h);
      auto colon = line.find(':');
      if (colon != std::string_view::npos
          && ascii_lower(line.substr(0, colon)) == "content-disposition") {
        name = header_param(line.substr(colon + 1), "name");
        filename = header_param(line.substr(colon + 1), "filename");
      }
      if (eol == std::string_view::npos)
        break;
      h = eol + 2;
    }
    if (!name.empty() && filename.empty())
      out[name] = std::string{content};
    pos = next + 2 + delim.size();
  }
}

} // namespace

caf::expected<form_fields> parse_form(std::string_view content_type,
                                      std::string_view body) {
  auto semi = content_type.find(';');
  auto type = ascii_lower(content_type.substr(0, semi));
  while (!type.empty() && type.back() == ' ')
    type.pop_back();
  if (type == "application/x-www-form-urlencoded") {
    form_fields out;
    for (auto& [k, v] : query_pairs(body))
      out[percent_decode_query(k)] = percent_decode_query(v);
    return out;
  }
  if (type == "multipart/form-data") {
    auto boundary = header_param(content_type, "boundary");
    if (boundary.empty() || boundary.size() > 200)
      return bad("multipart/form-data without a boundary parameter");
    return parse_multipart(boundary, body);
  }
  return bad("expected a form (application/x-www-form-urlencoded or "
             "multipart/form-data), got '"
             + std::string{content_type.substr(0, 100)} + "'");
}

} // namespace vigil
