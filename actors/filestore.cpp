#include "actors/filestore.hpp"

#include <filesystem>

#include "config/config.hpp"
#include "config/service_options.hpp"
#include "messages/errors.hpp"

namespace vigil {

namespace {

// S3's canned ACLs; Sentry sends whichever default_acl names.
bool canned_acl(const std::string& acl) {
  for (const char* x : {"private", "public-read", "public-read-write",
                        "authenticated-read", "aws-exec-read",
                        "bucket-owner-read", "bucket-owner-full-control"})
    if (acl == x)
      return true;
  return false;
}

} // namespace

caf::expected<std::unique_ptr<filestore_backend>>
make_filestore_backend(const config& cfg) {
  auto opts = read_service_options(cfg, "filestore.options",
                                   filestore_option_fields());
  if (!opts)
    return opts.error();
  auto backend = cfg.get_string("filestore.backend");
  if (backend == "filesystem") {
    auto location = opts->text("location");
    if (location.empty())
      location = (std::filesystem::path(cfg.get_string("node.data-dir"))
                  / "files")
                   .string();
    return make_filesystem_filestore(location);
  }
  if (backend != "s3")
    return caf::make_error(errc::bad_config,
                           "filestore.backend: unknown backend '" + backend
                             + "' (expected filesystem or s3)");
  filestore_s3_options o;
  o.access_key = opts->text("access_key");
  o.secret_key = opts->text("secret_key");
  o.bucket_name = opts->text("bucket_name");
  o.endpoint_url = opts->text("endpoint_url");
  o.region = opts->text("region");
  o.default_acl = opts->text("default_acl");
  if (!canned_acl(o.default_acl))
    return caf::make_error(errc::bad_config,
                           "filestore.options.default_acl: '" + o.default_acl
                             + "' is not an S3 canned ACL (public-read, "
                               "private, ...)");
  if (!o.endpoint_url.empty() && !o.endpoint_url.starts_with("http://")
      && !o.endpoint_url.starts_with("https://"))
    return caf::make_error(errc::bad_config,
                           "filestore.options.endpoint_url: expected an "
                           "http:// or https:// URL");
  return make_s3_filestore(o);
}

filestore_actor::behavior_type
filestore_service(filestore_actor::stateful_pointer<filestore_state> self,
                  std::shared_ptr<filestore_backend> backend) {
  self->state.backend = std::move(backend);
  return {
    [self](filestore_put& x) -> caf::result<bool> {
      if (auto err = self->state.backend->put(x.key, x.data, x.content_type))
        return err;
      return true;
    },
    [self](caf::get_atom, const std::string& key) -> caf::result<std::string> {
      auto got = self->state.backend->get(key);
      if (!got)
        return got.error();
      return std::move(*got);
    },
    [self](caf::delete_atom, const std::string& key) -> caf::result<bool> {
      if (auto err = self->state.backend->remove(key))
        return err;
      return true;
    },
    [self](exists_atom, const std::string& key) -> caf::result<bool> {
      auto yes = self->state.backend->exists(key);
      if (!yes)
        return yes.error();
      return *yes;
    },
  };
}

} // namespace vigil
