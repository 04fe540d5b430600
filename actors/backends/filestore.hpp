#pragma once

// The filestore: named blobs (attachments, rendered charts) kept on local
// disk or in an S3-compatible store (Sentry's filestore.backend). Calls
// block for at most the backend's timeouts, so a backend lives in a
// detached actor.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace vigil {

/// One stored file, as `list` finds it.
struct filestore_entry {
  std::string key;
  uint64_t size = 0;
};

/// A filestore backend. Keys are '/'-separated relative names
/// ("attachments/3/ab12.bin"), checked by `check_filestore_key`.
class filestore_backend {
public:
  virtual ~filestore_backend();

  /// A description for logs, without secrets.
  virtual std::string describe() const = 0;

  /// Stores `data` under `key`, replacing what was there. Either the whole
  /// of `data` is stored under `key` or, on failure, the old contents (or
  /// nothing) stay: never a part.
  virtual caf::error put(const std::string& key, std::string_view data,
                         const std::string& content_type) = 0;

  /// The bytes under `key`; errc::not_found when there are none.
  virtual caf::expected<std::string> get(const std::string& key) = 0;

  /// Removes `key`; removing a missing key is not an error.
  virtual caf::error remove(const std::string& key) = 0;

  /// Whether `key` has bytes.
  virtual caf::expected<bool> exists(const std::string& key) = 0;

  /// The files whose keys start with `prefix` (all for ""), in key order.
  virtual caf::expected<std::vector<filestore_entry>>
  list(const std::string& prefix) = 0;
};

/// Fails (errc::malformed, naming the key) unless `key` is a relative name
/// that cannot escape the store: not empty, no leading '/', no empty, "."
/// or ".." segment, no NUL or backslash.
caf::error check_filestore_key(std::string_view key);

/// A filesystem filestore under `location` (created when missing). Writes
/// go to a temporary file in the target's directory, are fsynced, renamed
/// over the final name and the directory fsynced: a crash leaves the old
/// file or the new one, never half of one.
caf::expected<std::unique_ptr<filestore_backend>>
make_filesystem_filestore(const std::string& location);

} // namespace vigil

namespace vigil {

/// How to reach an S3-compatible store (Sentry's filestore.options for
/// filestore.backend: s3).
struct filestore_s3_options {
  std::string access_key;
  /// Never logged, never in an error text.
  std::string secret_key;
  std::string bucket_name;
  /// e.g. "http://127.0.0.1:9000" (MinIO, s3rver): path-style addressing.
  /// Empty: AWS, virtual-host style (https://{bucket}.s3.{region}...).
  std::string endpoint_url;
  std::string region = "us-east-1";
  /// Sent as x-amz-acl on every put ("public-read" as Sentry; "private").
  std::string default_acl = "public-read";
  /// One request, start to end.
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
  /// Tries of one request when it fails transiently (5xx, connection
  /// refused or reset, timeout), with doubling pauses from `backoff`.
  int attempts = 6;
  std::chrono::milliseconds backoff{200};
  /// Puts above this size go as a multipart upload in parts of this size.
  size_t multipart_threshold = 8 * 1024 * 1024;
};

/// An S3 filestore; fails with errc::bad_config naming a missing option.
caf::expected<std::unique_ptr<filestore_backend>>
make_s3_filestore(const filestore_s3_options& opts);

} // namespace vigil
