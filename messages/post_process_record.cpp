#include "messages/post_process_record.hpp"

#include "messages/errors.hpp"
#include "messages/msgpack_codec.hpp"
#include "messages/msgpack_packer.hpp"
#include "messages/value.hpp"

namespace vigil {

// Two formats, told apart by the first byte (see the header):
// - version 2, written since issue 14: one msgpack array (first byte 0x93,
//   a fixarray of 3), [2, queue, [[task_id, event_id, project_id, group_id,
//   is_new], ...]];
// - version 1, written before: the byte 0x01, then the queue and a task
//   count, then per task two strings and three fields, each string a varint
//   length and its bytes, integers as varints (the group id zigzagged),
//   is_new one byte. Rows are deleted once their tasks are published, but a
//   node upgraded with a non-empty outbox still republishes them.

namespace {

constexpr unsigned char legacy_version = 1;
constexpr int64_t record_version = 2;

caf::error bad_record(std::string what) {
  return caf::make_error(errc::malformed, "outbox record: " + what);
}

// -- version 1 ----------------------------------------------------------------

/// Reads the varint format of version 1; `ok` turns false on the first
/// read past the end or overlong varint.
struct legacy_reader {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;

  uint64_t varint() {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= in.size())
        break;
      auto b = static_cast<unsigned char>(in[pos++]);
      x |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0)
        return x;
    }
    ok = false;
    return 0;
  }

  std::string text() {
    auto n = varint();
    if (!ok || n > in.size() - pos) {
      ok = false;
      return {};
    }
    std::string out{in.substr(pos, n)};
    pos += n;
    return out;
  }
};

caf::expected<post_process_batch> decode_legacy(std::string_view bytes) {
  legacy_reader r{bytes, 1};
  post_process_batch out;
  out.queue = r.text();
  auto n = r.varint();
  // Each task takes at least 5 bytes: a count beyond that is corrupt.
  if (!r.ok || n > bytes.size() / 5)
    return bad_record("bad task count");
  out.tasks.reserve(n);
  for (uint64_t i = 0; i < n && r.ok; ++i) {
    post_process_record t;
    t.task_id = r.text();
    t.event_id = r.text();
    t.project_id = r.varint();
    auto z = r.varint();
    t.group_id = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
    if (r.pos >= bytes.size()) {
      r.ok = false;
      break;
    }
    t.is_new = bytes[r.pos++] != 0;
    out.tasks.push_back(std::move(t));
  }
  if (!r.ok || r.pos != bytes.size())
    return bad_record("truncated");
  return out;
}

// -- version 2 ----------------------------------------------------------------

caf::expected<post_process_record> task_of(const value& x) {
  if (!x.is_array() || x.as_array().size() < 5 || x.as_array().size() > 6)
    return bad_record("a task is not an array of 5 fields (6 with "
                      "is_regression)");
  const auto& f = x.as_array();
  if (!f[0].is_text() || !f[1].is_text())
    return bad_record("task id and event id must be strings");
  // as_int() clamps a uinteger: project ids above INT64_MAX are read whole.
  if (!f[2].is_int() || (f[2].kind() == value_kind::integer && f[2].as_int() < 0))
    return bad_record("project id must be a non-negative integer");
  if (f[3].kind() != value_kind::integer)
    return bad_record("group id must be a 64-bit integer");
  if (!f[4].is_bool())
    return bad_record("is_new must be a boolean");
  if (f.size() == 6 && !f[5].is_bool())
    return bad_record("is_regression must be a boolean");
  post_process_record t;
  t.task_id = f[0].as_text();
  t.event_id = f[1].as_text();
  t.project_id = f[2].kind() == value_kind::uinteger
                   ? std::get<uint64_t>(f[2].data())
                   : static_cast<uint64_t>(f[2].as_int());
  t.group_id = f[3].as_int();
  t.is_new = f[4].as_bool();
  t.is_regression = f.size() == 6 && f[5].as_bool();
  return t;
}

caf::expected<post_process_batch> decode_v2(std::string_view bytes) {
  auto doc = decode_msgpack(bytes);
  if (!doc)
    return bad_record(error_text(doc.error()));
  if (!doc->is_array() || doc->as_array().empty()
      || !doc->as_array()[0].is_int())
    return bad_record("not a versioned array");
  const auto& xs = doc->as_array();
  if (xs[0].kind() != value_kind::integer || xs[0].as_int() != record_version)
    return bad_record("unknown version " + to_repr(xs[0], 32));
  if (xs.size() != 3 || !xs[1].is_text() || !xs[2].is_array())
    return bad_record("version 2 is [2, queue, tasks]");
  post_process_batch out;
  out.queue = xs[1].as_text();
  out.tasks.reserve(xs[2].as_array().size());
  for (const auto& x : xs[2].as_array()) {
    auto t = task_of(x);
    if (!t)
      return std::move(t.error());
    out.tasks.push_back(std::move(*t));
  }
  return out;
}

} // namespace

std::string encode_post_process_batch(const post_process_batch& batch) {
  std::string out;
  out.reserve(8 + batch.queue.size() + batch.tasks.size() * 90);
  msgpack_sink sink{out};
  msgpack_packer pk{sink};
  pk.pack_array(3);
  pk.pack_int64(record_version);
  pack_text(pk, batch.queue);
  pk.pack_array(static_cast<uint32_t>(batch.tasks.size()));
  for (const auto& t : batch.tasks) {
    pk.pack_array(t.is_regression ? 6 : 5);
    pack_text(pk, t.task_id);
    pack_text(pk, t.event_id);
    pk.pack_uint64(t.project_id);
    pk.pack_int64(t.group_id);
    t.is_new ? pk.pack_true() : pk.pack_false();
    if (t.is_regression)
      pk.pack_true();
  }
  return out;
}

caf::expected<post_process_batch>
decode_post_process_batch(std::string_view bytes) {
  if (bytes.empty())
    return bad_record("empty");
  if (static_cast<unsigned char>(bytes[0]) == legacy_version)
    return decode_legacy(bytes);
  return decode_v2(bytes);
}

} // namespace vigil
