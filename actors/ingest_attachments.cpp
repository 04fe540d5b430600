#include "actors/ingest_attachments.hpp"

#include "messages/md5.hpp"

namespace vigil {

std::string attachment_key(uint64_t project_id, const std::string& event_id,
                           size_t index, const std::string& sha1) {
  return "attachments/" + std::to_string(project_id) + "/" + event_id + "/"
         + std::to_string(index) + "-" + sha1;
}

caf::error keep_attachments(filestore_backend& files, event_store& store,
                            const std::vector<batch_attachment>& xs,
                            double now) {
  std::vector<attachment_row> rows;
  rows.reserve(xs.size());
  for (const auto& x : xs) {
    attachment_row row;
    row.project_id = x.project_id;
    row.event_id = x.event_id;
    row.name = x.item.name;
    row.content_type = x.item.content_type;
    row.type = x.item.type;
    row.size = static_cast<int64_t>(x.item.bytes.size());
    row.sha1 = sha1_hex(x.item.bytes);
    row.file_key = attachment_key(x.project_id, x.event_id, x.index, row.sha1);
    row.date_added = now;
    // The file first: a row never names bytes that are not there.
    if (auto err = files.put(row.file_key, x.item.bytes, row.content_type))
      return err;
    rows.push_back(std::move(row));
  }
  return store.store_attachments(rows);
}

} // namespace vigil
