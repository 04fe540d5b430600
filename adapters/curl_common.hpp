#pragma once

// What vigil's libcurl clients (HTTP, SMTP) share: the one global init and
// which failures are worth trying again.

#include <memory>

#include <curl/curl.h>

namespace vigil {

/// Runs curl_global_init once per process (it is not thread-safe on every
/// build).
void curl_global_once();

/// Whether trying again later may work: connection refused or reset,
/// timeout, name lookup failure, a reply cut short.
bool curl_transient(CURLcode rc);

struct curl_easy_deleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct curl_slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

/// An easy handle, cleaned up with its owner.
using curl_easy_ptr = std::unique_ptr<CURL, curl_easy_deleter>;
/// A string list (headers, recipients), freed with its owner.
using curl_slist_ptr = std::unique_ptr<curl_slist, curl_slist_deleter>;

} // namespace vigil
