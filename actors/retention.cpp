#include "actors/retention.hpp"

#include <chrono>

namespace vigil {

caf::expected<cleanup_figures> run_cleanup(event_store& store,
                                           filestore_backend* files,
                                           double cutoff) {
  cleanup_figures out;
  if (files != nullptr) {
    constexpr size_t batch = 500;
    for (;;) {
      auto rows = store.attachments_before(cutoff, batch);
      if (!rows)
        return std::move(rows.error());
      if (rows->empty())
        break;
      std::vector<int64_t> ids;
      ids.reserve(rows->size());
      for (const auto& a : *rows) {
        if (auto err = files->remove(a.file_key))
          return err;
        ids.push_back(a.id);
      }
      if (auto err = store.delete_attachments(ids))
        return err;
      out.attachments += static_cast<int64_t>(ids.size());
      if (rows->size() < batch)
        break;
    }
  }
  using namespace std::chrono;
  auto at = system_clock::time_point{duration_cast<system_clock::duration>(
    duration<double>(cutoff))};
  auto nodes = store.nodes().cleanup(at);
  if (!nodes)
    return std::move(nodes.error());
  out.nodes = *nodes;
  return out;
}

} // namespace vigil
