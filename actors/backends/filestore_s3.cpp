// The S3 filestore: one object per key in one bucket, every request signed
// with AWS Signature V4 by libcurl (adapters/curl_http).

#include <algorithm>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "actors/backends/filestore.hpp"
#include "adapters/curl_http.hpp"
#include "adapters/xml.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

// The first element `tag`'s text in an S3 XML answer ("" when there is
// none, or the answer is not XML).
std::string xml_field(const std::string& xml, const std::string& tag) {
  auto texts = xml_texts(xml);
  return texts ? xml_first(*texts, tag) : std::string{};
}

class s3_filestore final : public filestore_backend {
public:
  explicit s3_filestore(filestore_s3_options opts) : opts_(std::move(opts)) {
    while (!opts_.endpoint_url.empty() && opts_.endpoint_url.back() == '/')
      opts_.endpoint_url.pop_back();
  }

  std::string describe() const override {
    return "s3 bucket " + opts_.bucket_name + " at " + base_url();
  }

  caf::error put(const std::string& key, std::string_view data,
                 const std::string& content_type) override {
    if (auto err = check_filestore_key(key))
      return err;
    if (data.size() > opts_.multipart_threshold)
      return put_multipart(key, data, content_type);
    auto req = make("PUT", key, "", std::string(data));
    add_put_headers(req, content_type);
    auto res = perform(req);
    if (!res)
      return res.error();
    return expect_ok(*res, "put " + key);
  }

  caf::expected<std::string> get(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto res = perform(make("GET", key, "", {}));
    if (!res)
      return res.error();
    if (res->status == 404)
      return caf::make_error(errc::not_found, "no object " + key);
    if (auto err = expect_ok(*res, "get " + key))
      return err;
    return std::move(res->body);
  }

  caf::error remove(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto res = perform(make("DELETE", key, "", {}));
    if (!res)
      return res.error();
    if (res->status == 404)
      return {};
    return expect_ok(*res, "delete " + key);
  }

  caf::expected<bool> exists(const std::string& key) override {
    if (auto err = check_filestore_key(key))
      return err;
    auto res = perform(make("HEAD", key, "", {}));
    if (!res)
      return res.error();
    if (res->status == 404)
      return false;
    if (auto err = expect_ok(*res, "head " + key))
      return err;
    return true;
  }

  caf::expected<std::vector<filestore_entry>>
  list(const std::string& prefix) override {
    std::vector<filestore_entry> out;
    std::string token;
    // ListObjectsV2, a page (at most 1,000 keys) at a time; the query's
    // names in SigV4's order.
    for (;;) {
      std::string q;
      if (!token.empty())
        q += "continuation-token=" + curl_url_encode(token, false) + "&";
      q += "list-type=2&prefix=" + curl_url_encode(prefix, false);
      auto res = perform(make("GET", "", q, {}));
      if (!res)
        return res.error();
      if (auto err = expect_ok(*res, "list " + prefix))
        return err;
      auto texts = xml_texts(res->body);
      if (!texts)
        return caf::make_error(errc::malformed,
                               "s3 list " + prefix + ": "
                                 + error_text(texts.error()));
      for (const auto& t : *texts) {
        if (t.path.ends_with("Contents/Key"))
          out.push_back({t.text, 0});
        else if (t.path.ends_with("Contents/Size") && !out.empty())
          out.back().size = std::strtoull(t.text.c_str(), nullptr, 10);
      }
      token = xml_first(*texts, "NextContinuationToken");
      if (xml_first(*texts, "IsTruncated") != "true" || token.empty())
        break;
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.key < b.key; });
    return out;
  }

private:
  std::string base_url() const {
    if (!opts_.endpoint_url.empty())
      return opts_.endpoint_url + "/" + opts_.bucket_name;
    return "https://" + opts_.bucket_name + ".s3." + opts_.region
           + ".amazonaws.com";
  }

  // `query` must already be in SigV4's canonical form (names sorted,
  // every name with '='): libcurl 7.88 signs it as given.
  curl_request make(const std::string& method, const std::string& key,
                    const std::string& query, std::string body) const {
    curl_request req;
    req.method = method;
    req.url = base_url() + "/" + curl_url_encode(key, true);
    if (!query.empty())
      req.url += "?" + query;
    req.timeout = opts_.timeout;
    req.connect_timeout = opts_.connect_timeout;
    req.headers.emplace_back("x-amz-content-sha256", sha256_hex(body));
    req.body = std::move(body);
    req.sigv4 = curl_sigv4{"aws:amz:" + opts_.region + ":s3",
                           opts_.access_key, opts_.secret_key};
    return req;
  }

  void add_put_headers(curl_request& req,
                       const std::string& content_type) const {
    req.headers.emplace_back("Content-Type",
                             content_type.empty() ? "application/octet-stream"
                                                  : content_type);
    if (!opts_.default_acl.empty())
      req.headers.emplace_back("x-amz-acl", opts_.default_acl);
  }

  // One request, tried again with doubling pauses while it fails
  // transiently. Any answer below 500 is final.
  caf::expected<curl_response> perform(const curl_request& req) const {
    auto pause = opts_.backoff;
    std::string last;
    for (int attempt = 1;; ++attempt) {
      auto res = curl_perform(req);
      if (res && res.response->status < 500)
        return std::move(*res.response);
      bool transient = res ? true : res.failure.transient;
      last = res ? req.method + " " + req.url + ": HTTP "
                     + std::to_string(res.response->status) + " "
                     + xml_field(res.response->body, "Code")
                 : res.failure.message;
      if (!transient || attempt >= opts_.attempts)
        break;
      // `last` names the method and URL, never the credentials.
      spdlog::warn("filestore s3: {}; retry {} of {} in {} ms", last,
                   attempt, opts_.attempts - 1, pause.count());
      std::this_thread::sleep_for(pause);
      pause *= 2;
    }
    return caf::make_error(errc::connection_failed,
                           "s3 after " + std::to_string(opts_.attempts)
                             + " tries: " + last);
  }

  static caf::error expect_ok(const curl_response& res,
                              const std::string& what) {
    if (res.status >= 200 && res.status < 300)
      return {};
    auto code = xml_field(res.body, "Code");
    auto msg = xml_field(res.body, "Message");
    return caf::make_error(errc::command_failed,
                           "s3 " + what + ": HTTP "
                             + std::to_string(res.status) + " " + code
                             + (msg.empty() ? "" : " (" + msg + ")"));
  }

  caf::error put_multipart(const std::string& key, std::string_view data,
                           const std::string& content_type) {
    auto start = make("POST", key, "uploads=", {});
    add_put_headers(start, content_type);
    auto res = perform(start);
    if (!res)
      return res.error();
    if (auto err = expect_ok(*res, "start multipart upload of " + key))
      return err;
    auto upload_id = xml_field(res->body, "UploadId");
    if (upload_id.empty())
      return caf::make_error(errc::malformed,
                             "s3 start multipart upload of " + key
                               + ": no UploadId in the answer");
    auto id_q = "uploadId=" + curl_url_encode(upload_id, false);
    std::string parts;
    size_t part_size = opts_.multipart_threshold;
    int number = 1;
    for (size_t off = 0; off < data.size(); off += part_size, ++number) {
      auto piece = data.substr(off, part_size);
      auto q = "partNumber=" + std::to_string(number) + "&" + id_q;
      auto part = perform(make("PUT", key, q, std::string(piece)));
      caf::error err;
      if (!part)
        err = part.error();
      else
        err = expect_ok(*part, "upload part of " + key);
      const std::string* etag = part ? part->header("etag") : nullptr;
      if (!err && !etag)
        err = caf::make_error(errc::malformed,
                              "s3 upload part of " + key + ": no ETag");
      if (err) {
        abort_upload(key, id_q);
        return err;
      }
      parts += "<Part><PartNumber>" + std::to_string(number)
               + "</PartNumber><ETag>" + *etag + "</ETag></Part>";
    }
    auto done = perform(make("POST", key, id_q,
                             "<CompleteMultipartUpload>" + parts
                               + "</CompleteMultipartUpload>"));
    caf::error err;
    if (!done)
      err = done.error();
    else
      err = expect_ok(*done, "complete multipart upload of " + key);
    // S3 may answer 200 with an <Error> body to a completion.
    if (!err && done->body.find("<Error>") != std::string::npos)
      err = caf::make_error(errc::command_failed,
                            "s3 complete multipart upload of " + key + ": "
                              + xml_field(done->body, "Code"));
    if (err)
      abort_upload(key, id_q);
    return err;
  }

  void abort_upload(const std::string& key, const std::string& id_q) {
    // Best effort: an unfinished upload costs storage until it is aborted,
    // but the object itself never shows a partial state.
    (void) perform(make("DELETE", key, id_q, {}));
  }

  filestore_s3_options opts_;
};

} // namespace

caf::expected<std::unique_ptr<filestore_backend>>
make_s3_filestore(const filestore_s3_options& opts) {
  auto missing = [](const char* key, const char* why) {
    return caf::make_error(errc::bad_config,
                           std::string("filestore.options.") + key
                             + " is missing" + why);
  };
  const char* no_instance = " (instance credentials are not available: set "
                            "access_key and secret_key)";
  if (opts.access_key.empty())
    return missing("access_key", no_instance);
  if (opts.secret_key.empty())
    return missing("secret_key", no_instance);
  if (opts.bucket_name.empty())
    return missing("bucket_name", "");
  if (opts.region.empty())
    return missing("region", "");
  if (opts.attempts < 1)
    return caf::make_error(errc::bad_config,
                           "filestore s3 attempts must be at least 1");
  return std::unique_ptr<filestore_backend>(new s3_filestore(opts));
}

} // namespace vigil
