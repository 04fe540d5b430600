#pragma once

// `vigil filestore put|get|rm|exists|ls`: the operator's handles on the
// configured filestore (filestore.backend, filestore.options), and the
// interop tests' way to reach it.

#include <string>

#include "config/config.hpp"

namespace vigil {

/// What a `vigil filestore` command works on.
struct filestore_command_options {
  std::string key;
  /// put: the file to store ("-" = standard input); get: where to write
  /// ("-" = standard output).
  std::string file = "-";
  std::string content_type = "application/octet-stream";
  /// ls: one JSON array instead of lines.
  bool json = false;
};

/// Stores `file` under `key`. 0, 1 when the store fails, 2 for bad config.
int filestore_put_command(const config& cfg,
                          const filestore_command_options& o);
/// Writes the bytes under `key` to `file`. 0, 1 when missing or failing.
int filestore_get_command(const config& cfg,
                          const filestore_command_options& o);
/// Removes `key`. 0, 1 on failure.
int filestore_rm_command(const config& cfg,
                         const filestore_command_options& o);
/// Exit status 0 when `key` exists, 1 when not (or on failure).
int filestore_exists_command(const config& cfg,
                             const filestore_command_options& o);

/// Lists the files whose keys start with `key`: "SIZE KEY" lines (or a
/// JSON array). 0, 1 on failure.
int filestore_ls_command(const config& cfg,
                         const filestore_command_options& o);

} // namespace vigil
