#include "adapters/xml.hpp"

#include <memory>

#include <expat.h>

#include "messages/errors.hpp"

namespace vigil {

namespace {

struct parse_state {
  std::vector<xml_text> out;
  std::string path;
  std::string text;
};

void on_start(void* user, const XML_Char* name, const XML_Char**) {
  auto* st = static_cast<parse_state*>(user);
  if (!st->path.empty())
    st->path += '/';
  st->path += name;
  st->text.clear();
}

void on_end(void* user, const XML_Char*) {
  auto* st = static_cast<parse_state*>(user);
  if (!st->text.empty())
    st->out.push_back({st->path, std::move(st->text)});
  st->text.clear();
  auto slash = st->path.rfind('/');
  st->path.erase(slash == std::string::npos ? 0 : slash);
}

void on_text(void* user, const XML_Char* s, int len) {
  static_cast<parse_state*>(user)->text.append(s, static_cast<size_t>(len));
}

} // namespace

caf::expected<std::vector<xml_text>> xml_texts(std::string_view doc) {
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser{
    XML_ParserCreate("UTF-8"), &XML_ParserFree};
  if (!parser)
    return caf::make_error(errc::unavailable, "cannot create an XML parser");
  parse_state st;
  XML_SetUserData(parser.get(), &st);
  XML_SetElementHandler(parser.get(), on_start, on_end);
  XML_SetCharacterDataHandler(parser.get(), on_text);
  if (doc.size() > static_cast<size_t>(INT32_MAX)
      || XML_Parse(parser.get(), doc.data(), static_cast<int>(doc.size()),
                   XML_TRUE)
           == XML_STATUS_ERROR)
    return caf::make_error(
      errc::malformed,
      std::string{"XML: "} + XML_ErrorString(XML_GetErrorCode(parser.get()))
        + " at line " + std::to_string(XML_GetCurrentLineNumber(parser.get())));
  return std::move(st.out);
}

std::string xml_first(const std::vector<xml_text>& texts,
                      std::string_view name) {
  for (const auto& t : texts) {
    std::string_view p{t.path};
    if (p == name
        || (p.size() > name.size() && p.ends_with(name)
            && p[p.size() - name.size() - 1] == '/'))
      return t.text;
  }
  return {};
}

} // namespace vigil
