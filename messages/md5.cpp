#include "messages/md5.hpp"

#include <openssl/evp.h>

namespace vigil {

namespace {

// The lower-case hex digest of the concatenation of `parts` by `md`. One
// context per thread and digest, since EVP_Digest allocates and frees one
// per call; these run per event on the ingest path.
template <int Which>
std::string hex_digest(const EVP_MD* md,
                       std::initializer_list<std::string_view> parts) {
  struct context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local context c;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = c.ctx != nullptr && EVP_DigestInit_ex(c.ctx, md, nullptr) == 1;
  for (auto part : parts)
    ok = ok && EVP_DigestUpdate(c.ctx, part.data(), part.size()) == 1;
  if (!ok || EVP_DigestFinal_ex(c.ctx, digest, &len) != 1)
    len = 0;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * len, '\0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xF];
  }
  return out;
}

} // namespace

std::string md5_hex(std::initializer_list<std::string_view> parts) {
  // Fetched once: EVP_md5() makes OpenSSL 3 look the implementation up on
  // every digest.
  static EVP_MD* fetched = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return hex_digest<0>(fetched != nullptr ? fetched : EVP_md5(), parts);
}

std::string sha1_hex(std::string_view data) {
  static EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return hex_digest<1>(fetched != nullptr ? fetched : EVP_sha1(), {data});
}

} // namespace vigil
