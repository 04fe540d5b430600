#pragma once

// Edits of JSON text that leave every other byte as it was. Event
// normalization stores the document an SDK sent with vigil's fields set,
// not a re-serialization of it: numbers keep their spelling, keys their
// order and duplicates, strings their escapes.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace vigil {

/// One member to set in a JSON object's text.
struct json_member_edit {
  /// The member's name (written by append_json_string when added).
  std::string_view key;
  /// Its value, as JSON text.
  std::string value;
  /// The object has a member of this name already, as JSON readers see
  /// names (escapes decoded): only then is the text scanned for it.
  bool present = false;
};

/// Returns `text`, a valid JSON object (validated by the caller's parser),
/// with each edit's member set: every occurrence of a present member gets
/// its value replaced in place, the others are added before the closing
/// brace in the order given. Without a present member the text is copied
/// once with the additions, never scanned. nullopt when `text` is not a
/// JSON object.
std::optional<std::string>
splice_members(std::string_view text,
               const std::vector<json_member_edit>& edits);

/// Returns `text` with every well-formed integer token beyond 64 bits that
/// still fits a double overwritten by "0" and spaces (same length), so
/// that a parser that cannot represent them (simdjson) reads the rest;
/// strings are left alone.
std::string tame_big_integers(std::string_view text);

/// `obj` as JSON text with member `key` set to `value` (JSON text): every
/// occurrence replaced, appended when absent. The other members keep their
/// order; their values are written back as simdjson read them (minified).
std::string with_member(simdjson::dom::object obj, std::string_view key,
                        std::string_view value);

} // namespace vigil
