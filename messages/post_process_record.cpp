#include "messages/post_process_record.hpp"

#include "messages/errors.hpp"

namespace vigil {

namespace {

constexpr unsigned char record_version = 1;

void put_varint(std::string& out, uint64_t x) {
  while (x >= 0x80) {
    out += static_cast<char>((x & 0x7F) | 0x80);
    x >>= 7;
  }
  out += static_cast<char>(x);
}

void put_text(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out += s;
}

struct reader {
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

} // namespace

std::string encode_post_process_batch(const post_process_batch& batch) {
  std::string out;
  out.reserve(8 + batch.queue.size() + batch.tasks.size() * 80);
  out += static_cast<char>(record_version);
  put_text(out, batch.queue);
  put_varint(out, batch.tasks.size());
  for (auto& t : batch.tasks) {
    put_text(out, t.task_id);
    put_text(out, t.event_id);
    put_varint(out, t.project_id);
    // Zigzag: a group id is never negative here, but the field is signed.
    put_varint(out, (static_cast<uint64_t>(t.group_id) << 1)
                      ^ static_cast<uint64_t>(t.group_id >> 63));
    out += t.is_new ? '\1' : '\0';
  }
  return out;
}

caf::expected<post_process_batch>
decode_post_process_batch(std::string_view bytes) {
  if (bytes.empty() || static_cast<unsigned char>(bytes[0]) != record_version)
    return caf::make_error(errc::malformed,
                           "outbox record: unknown version "
                             + (bytes.empty() ? std::string{"(empty)"}
                                              : std::to_string(
                                                static_cast<unsigned char>(
                                                  bytes[0]))));
  reader r{bytes, 1};
  post_process_batch out;
  out.queue = r.text();
  auto n = r.varint();
  // Each task takes at least 5 bytes: a count beyond that is corrupt.
  if (!r.ok || n > bytes.size() / 5)
    return caf::make_error(errc::malformed, "outbox record: bad task count");
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
    return caf::make_error(errc::malformed, "outbox record: truncated");
  return out;
}

} // namespace vigil
