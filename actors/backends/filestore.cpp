#include "actors/backends/filestore.hpp"

#include "messages/errors.hpp"

namespace vigil {

filestore_backend::~filestore_backend() = default;

caf::error check_filestore_key(std::string_view key) {
  auto bad = [&](const char* why) {
    return caf::make_error(errc::malformed, "filestore key '"
                                         + std::string(key.substr(0, 200))
                                         + "' " + why);
  };
  if (key.empty())
    return bad("is empty");
  if (key.size() > 1024)
    return bad("is longer than 1024 bytes");
  if (key.front() == '/')
    return bad("is absolute");
  for (char c : key)
    if (c == '\0' || c == '\\')
      return bad("contains a NUL or a backslash");
  size_t start = 0;
  while (start <= key.size()) {
    auto end = key.find('/', start);
    if (end == std::string_view::npos)
      end = key.size();
    auto seg = key.substr(start, end - start);
    if (seg.empty())
      return bad("has an empty segment");
    if (seg == "." || seg == "..")
      return bad("has a '.' or '..' segment");
    start = end + 1;
  }
  return {};
}

} // namespace vigil
