#include "adapters/curl_http.hpp"

#include "adapters/curl_common.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include <curl/curl.h>
#include <openssl/evp.h>

namespace vigil {

const std::string* curl_response::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (k == name)
      return &v;
  return nullptr;
}

namespace {

size_t write_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t write_header(char* data, size_t size, size_t n, void* user) {
  auto* resp = static_cast<curl_response*>(user);
  std::string_view line(data, size * n);
  // A status line starts a new header block (after 100-continue or a
  // redirect): keep only the last block's headers.
  if (line.starts_with("HTTP/")) {
    resp->headers.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos)
    return size * n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty()
         && (value.back() == '\r' || value.back() == '\n'
             || value.back() == ' '))
    value.remove_suffix(1);
  resp->headers.emplace_back(std::move(name), std::string(value));
  return size * n;
}

curl_result failure(bool transient, const curl_request& req,
                    const std::string& why) {
  curl_result r;
  r.failure.transient = transient;
  // The URL carries no credentials (they travel in CURLOPT_USERPWD), so it
  // is safe to name; the secret never is.
  r.failure.message = req.method + " " + req.url + ": " + why;
  return r;
}

} // namespace

curl_result curl_perform(const curl_request& req) {
  curl_global_once();
  std::unique_ptr<CURL, curl_easy_deleter> h(curl_easy_init());
  if (!h)
    return failure(false, req, "curl_easy_init failed");
  CURL* c = h.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_response resp;

  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);

  // Bodies go through POSTFIELDS for every method (with CUSTOMREQUEST
  // naming it): libcurl's SigV4 signer hashes POSTFIELDS, not a read
  // callback's bytes.
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET" || !req.body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(req.body.size()));
    if (req.method != "POST")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  curl_slist* raw = nullptr;
  for (auto& [k, v] : req.headers)
    raw = curl_slist_append(raw, (k + ": " + v).c_str());
  // No "Expect: 100-continue" round trip on uploads.
  raw = curl_slist_append(raw, "Expect:");
  std::unique_ptr<curl_slist, curl_slist_deleter> list(raw);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());

  std::string userpwd;
  if (req.sigv4) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, req.sigv4->provider.c_str());
    userpwd = req.sigv4->access_key + ":" + req.sigv4->secret_key;
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  // Wipe the copy of the secret before anything else can see the stack.
  std::fill(userpwd.begin(), userpwd.end(), '\0');
  if (rc != CURLE_OK) {
    std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return failure(curl_transient(rc), req, why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_result r;
  r.response = std::move(resp);
  return r;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string curl_url_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~'
        || (keep_slash && ch == '/')) {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

} // namespace vigil
