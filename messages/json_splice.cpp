#include "messages/json_splice.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "messages/json_string.hpp"
#include "messages/json_writer.hpp"

namespace vigil {

namespace {

// simdjson's DOM keeps no source offsets, so the splice points are found by
// walking the top level of the (already validated) text: it only has to
// skip strings and balanced containers.

/// Span of one top-level member's value in the original text.
struct member_span {
  /// Unescaped, as every JSON reader sees it: `"proj\u0065ct"` is
  /// `project`.
  std::string key;
  size_t value_begin = 0;
  size_t value_end = 0;
};

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size()
         && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    ++i;
  return i;
}

/// `i` is at the opening quote; returns the index past the closing quote.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return s.size();
}

/// Returns the index past the value starting at `i`.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size())
    return i;
  if (s[i] == '"')
    return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    size_t depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[')
        ++depth;
      else if ((c == '}' || c == ']') && --depth == 0)
        return i + 1;
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']'
         && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
    ++i;
  return i;
}

/// The text of a JSON string's contents (between the quotes) with its
/// escapes decoded, so that keys compare as readers see them. The text was
/// validated by simdjson; a lone surrogate becomes U+FFFD.
std::string unescape_json(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos)
    return std::string{raw};
  std::string out;
  out.reserve(raw.size());
  append_unescaped_json(out, raw);
  return out;
}

/// Members of the top-level object and the index of its closing brace.
struct top_level {
  std::vector<member_span> members;
  size_t close = 0;
};

/// Requires `s` to be a valid JSON object (checked by simdjson before).
bool scan_top_level(std::string_view s, top_level& out) {
  size_t i = skip_ws(s, 0);
  if (i >= s.size() || s[i] != '{')
    return false;
  i = skip_ws(s, i + 1);
  while (i < s.size() && s[i] != '}') {
    if (s[i] != '"')
      return false;
    auto key_end = skip_string(s, i);
    if (key_end > s.size() || key_end < i + 2)
      return false;
    member_span m;
    m.key = unescape_json(s.substr(i + 1, key_end - i - 2));
    i = skip_ws(s, key_end);
    if (i >= s.size() || s[i] != ':')
      return false;
    i = skip_ws(s, i + 1);
    m.value_begin = i;
    m.value_end = skip_value(s, i);
    i = skip_ws(s, m.value_end);
    out.members.push_back(m);
    if (i < s.size() && s[i] == ',')
      i = skip_ws(s, i + 1);
  }
  if (i >= s.size())
    return false;
  out.close = i;
  return true;
}

/// Length of the JSON number token at `s[i]`, 0 if it is not one.
size_t number_token(std::string_view s, size_t i) {
  size_t j = i;
  auto digits = [&] {
    size_t k = j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9')
      ++j;
    return j - k;
  };
  if (j < s.size() && s[j] == '-')
    ++j;
  if (j < s.size() && s[j] == '0')
    ++j;
  else if (digits() == 0)
    return 0;
  if (j < s.size() && s[j] == '.') {
    ++j;
    if (digits() == 0)
      return 0;
  }
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    ++j;
    if (j < s.size() && (s[j] == '+' || s[j] == '-'))
      ++j;
    if (digits() == 0)
      return 0;
  }
  return j - i;
}

} // namespace

std::optional<std::string>
splice_members(std::string_view text,
               const std::vector<json_member_edit>& edits) {
  auto close = text.find_last_not_of(" \t\n\r");
  auto open = skip_ws(text, 0);
  if (close == std::string_view::npos || text[close] != '}'
      || open >= close || text[open] != '{')
    return std::nullopt;
  bool replace_any = std::any_of(edits.begin(), edits.end(),
                                 [](auto& e) { return e.present; });
  top_level top;
  if (replace_any && !scan_top_level(text, top))
    return std::nullopt;
  struct replacement {
    size_t begin, end;
    const std::string* value;
  };
  std::vector<replacement> reps;
  std::string tail;
  bool has_members = skip_ws(text, open + 1) < close;
  for (auto& e : edits) {
    bool found = false;
    for (auto& m : top.members) {
      if (m.key == e.key) {
        found = true;
        reps.push_back({m.value_begin, m.value_end, &e.value});
      }
    }
    if (found)
      continue;
    if (has_members || !tail.empty())
      tail += ',';
    append_json_string(tail, e.key);
    tail += ':';
    tail += e.value;
  }
  std::sort(reps.begin(), reps.end(),
            [](auto& a, auto& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(text.size() + tail.size() + 64);
  size_t pos = 0;
  for (auto& r : reps) {
    out.append(text.substr(pos, r.begin - pos));
    out += *r.value;
    pos = r.end;
  }
  out.append(text.substr(pos, close - pos));
  out += tail;
  out.append(text.substr(close));
  return out;
}

std::string tame_big_integers(std::string_view text) {
  std::string out{text};
  size_t i = 0;
  while (i < out.size()) {
    char c = out[i];
    if (c == '"') {
      i = skip_string(out, i);
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      ++i;
      continue;
    }
    auto n = number_token(out, i);
    if (n == 0) {
      ++i;
      continue;
    }
    auto tok = std::string_view{out}.substr(i, n);
    // Only integers beyond 64 bits that still fit a double are tamed: a
    // number beyond a double is refused by the JSON readers downstream
    // (nlohmann: "number overflow"), so the event stays malformed.
    bool integral = tok.find_first_of(".eE") == std::string_view::npos;
    int64_t x = 0;
    uint64_t y = 0;
    double d = 0;
    bool big_integer
      = integral
        && std::from_chars(tok.data(), tok.data() + n, x).ec != std::errc{}
        && std::from_chars(tok.data(), tok.data() + n, y).ec != std::errc{}
        && std::from_chars(tok.data(), tok.data() + n, d).ec == std::errc{};
    if (big_integer) {
      out[i] = '0';
      std::fill(out.begin() + static_cast<ptrdiff_t>(i) + 1,
                out.begin() + static_cast<ptrdiff_t>(i + n), ' ');
    }
    i += n;
  }
  return out;
}


std::string with_member(simdjson::dom::object obj, std::string_view key,
                        std::string_view value) {
  std::string out = "{";
  bool found = false;
  for (auto field : obj) {
    if (out.size() > 1)
      out += ',';
    append_json_string(out, field.key);
    out += ':';
    if (field.key == key) {
      found = true;
      out += value;
    } else {
      out += simdjson::minify(field.value);
    }
  }
  if (!found) {
    if (out.size() > 1)
      out += ',';
    append_json_string(out, key);
    out += ':';
    out += value;
  }
  out += '}';
  return out;
}

} // namespace vigil
