#include "messages/secret_compare.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace vigil {

namespace {

bool sha256(std::string_view text, unsigned char (&out)[EVP_MAX_MD_SIZE]) {
  unsigned int len = 0;
  return EVP_Digest(text.data(), text.size(), out, &len, EVP_sha256(),
                    nullptr)
           == 1
         && len == 32;
}

} // namespace

bool secrets_equal(std::string_view given, std::string_view secret) {
  unsigned char a[EVP_MAX_MD_SIZE];
  unsigned char b[EVP_MAX_MD_SIZE];
  if (!sha256(given, a) || !sha256(secret, b))
    return false;
  return CRYPTO_memcmp(a, b, 32) == 0;
}

} // namespace vigil
