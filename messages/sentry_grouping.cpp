#include "messages/sentry_grouping.hpp"

#include <string_view>

#include "messages/md5.hpp"

namespace vigil::sentry_fields {

namespace {

/// Longest message title, in code points (Sentry truncates to 100).
constexpr size_t max_title_chars = 100;

// -- grouping -----------------------------------------------------------------

/// Collects grouping components, each length-prefixed so that no two
/// different component lists hash alike.
class hash_input {
public:
  void add(std::string_view x) {
    buf_ += std::to_string(x.size());
    buf_ += ':';
    buf_ += x;
  }

  std::string md5_hex() const {
    return vigil::md5_hex(buf_);
  }

private:
  std::string buf_;
};

/// Adds the default components: exception chain, else message, else the
/// "<unlabeled>" marker.
void add_default_components(const top_members& event,
                            const std::vector<dom::object>& excs,
                            hash_input& h) {
  if (!excs.empty()) {
    h.add("exception");
    for (auto exc : excs) {
      h.add(member_string(exc, "type"));
      h.add(member_string(exc, "value"));
      auto frames = frames_of(exc);
      bool any_in_app = std::any_of(frames.begin(), frames.end(),
                                    [](dom::object f) {
                                      return member_true(f, "in_app");
                                    });
      for (auto f : frames) {
        if (any_in_app && !member_true(f, "in_app"))
          continue;
        auto where = member_string(f, "module");
        if (where.empty())
          where = member_string(f, "filename");
        h.add(where);
        h.add(member_string(f, "function"));
      }
    }
    return;
  }
  if (auto msg = event_message(event); !msg.empty()) {
    h.add("message");
    h.add(msg);
    return;
  }
  h.add("<unlabeled>");
}

/// True for "{{ default }}" with any inner spacing.
bool is_default_marker(std::string_view s) {
  if (s.size() < 4 || s.substr(0, 2) != "{{" || s.substr(s.size() - 2) != "}}")
    return false;
  s = s.substr(2, s.size() - 4);
  while (!s.empty() && s.front() == ' ')
    s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ')
    s.remove_suffix(1);
  return s == "default";
}

} // namespace

std::string grouping_hash(const top_members& event,
                          const std::vector<dom::object>& excs) {
  hash_input h;
  dom::array fp;
  if (event.array("fingerprint", fp) && fp.size() > 0) {
    h.add("fingerprint");
    for (dom::element el : fp) {
      std::string_view s;
      if (el.get_string().get(s) == simdjson::SUCCESS) {
        if (is_default_marker(s))
          add_default_components(event, excs, h);
        else
          h.add(s);
        continue;
      }
      // Sentry stringifies non-string fingerprint entries.
      auto t = el.type();
      if (t == dom::element_type::INT64 || t == dom::element_type::UINT64
          || t == dom::element_type::DOUBLE || t == dom::element_type::BOOL)
        h.add(simdjson::minify(el));
    }
    return h.md5_hex();
  }
  add_default_components(event, excs, h);
  return h.md5_hex();
}

// -- title and culprit --------------------------------------------------------

namespace {

/// Truncates `s` to at most `n` code points without splitting a UTF-8
/// sequence.
std::string_view truncate_chars(std::string_view s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == n)
        return s.substr(0, i);
      ++chars;
    }
  }
  return s;
}

} // namespace

std::string make_title(const top_members& event,
                       const std::vector<dom::object>& excs) {
  // A transaction is named by its transaction, as Sentry titles it.
  if (event.string("type") == "transaction")
    if (auto tx = event.string("transaction"); !tx.empty())
      return std::string{tx};
  if (!excs.empty()) {
    auto type = member_string(excs.back(), "type");
    auto value = member_string(excs.back(), "value");
    std::string out{type};
    if (!type.empty() && !value.empty())
      out += ": ";
    out += value;
    if (!out.empty())
      return out;
  }
  if (auto msg = event_message(event); !msg.empty()) {
    auto line = msg.substr(0, msg.find('\n'));
    return std::string{truncate_chars(line, max_title_chars)};
  }
  return "<unlabeled event>";
}

std::string make_culprit(const top_members& event,
                         const std::vector<dom::object>& excs) {
  if (auto tx = event.string("transaction"); !tx.empty())
    return std::string{tx};
  for (auto it = excs.rbegin(); it != excs.rend(); ++it) {
    auto frames = frames_of(*it);
    for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
      if (!member_true(*f, "in_app"))
        continue;
      auto where = member_string(*f, "module");
      if (where.empty())
        where = member_string(*f, "filename");
      auto fn = member_string(*f, "function");
      std::string out{where.empty() ? std::string_view{"?"} : where};
      out += " in ";
      out += fn.empty() ? std::string_view{"?"} : fn;
      return out;
    }
  }
  return {};
}

} // namespace vigil::sentry_fields
