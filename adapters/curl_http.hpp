#pragma once

// A small blocking HTTP client on libcurl: one call, one request, one typed
// answer. Generic on purpose: the S3 filestore uses it now, the mailer's and
// Datadog's HTTP calls later. A call blocks its thread for at most the given
// timeout, so callers run it in a detached actor.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

/// AWS Signature V4 credentials, handed to libcurl's built-in signer
/// (CURLOPT_AWS_SIGV4): vigil signs nothing itself.
struct curl_sigv4 {
  /// e.g. "aws:amz:us-east-1:s3" (provider1:provider2:region:service).
  std::string provider;
  std::string access_key;
  /// Never logged, never part of an error text.
  std::string secret_key;
};

/// One HTTP request.
struct curl_request {
  /// e.g. "GET", "PUT", "DELETE", "HEAD", "POST".
  std::string method = "GET";
  std::string url;
  /// In order; names as given ("Content-Type", "x-amz-acl").
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// The whole exchange: connect, send, receive.
  std::chrono::milliseconds timeout{30000};
  /// Connecting alone (bounded separately so a dead host fails fast).
  std::chrono::milliseconds connect_timeout{5000};
  std::optional<curl_sigv4> sigv4;
};

/// What the server answered.
struct curl_response {
  long status = 0;
  /// Names lower-cased, in the order received (of the last response when
  /// redirects or 100-continue came first).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header called `name` (lower case), if any.
  const std::string* header(const std::string& name) const;
};

/// A request that got no HTTP answer at all.
struct curl_failure {
  /// True when trying again later may work (connection refused or reset,
  /// timeout, name lookup failure).
  bool transient = false;
  /// libcurl's reason with the method and URL; never a secret.
  std::string message;
};

/// Either an answer (of any status) or a failure.
struct curl_result {
  std::optional<curl_response> response;
  curl_failure failure;

  explicit operator bool() const { return response.has_value(); }
};

/// Performs `req`, blocking for at most `req.timeout`. Thread-safe: each
/// call uses its own easy handle (libcurl's global init runs once).
curl_result curl_perform(const curl_request& req);

/// The SHA-256 of `data` in lower-case hex (S3's x-amz-content-sha256).
std::string sha256_hex(std::string_view data);

/// Percent-encodes `s` as RFC 3986 unreserved-or-escaped, leaving '/' as is
/// when `keep_slash` (S3 object keys in paths).
std::string curl_url_encode(const std::string& s, bool keep_slash);

} // namespace vigil
