#pragma once

// `vigil cleanup --days N`: retention, as Sentry's `sentry cleanup`.

#include "config/config.hpp"

namespace vigil {

/// Removes events and attachments stored more than `days` days ago from
/// the configured database (db.url) and filestore; prints what it removed.
/// 0 on success, 1 when a store fails, 2 for bad config.
int cleanup_command(const config& cfg, double days);

} // namespace vigil
