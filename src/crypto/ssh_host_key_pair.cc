#include "crypto/ssh_host_key_pair.h"

#include <openssl/evp.h>

#include "crypto/openssl_util.h"

namespace ferry::crypto {

Result<std::string> NewSshHostKeyPair() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return OpenSslFailure("making an ed25519 SSH host key");
  std::string pair(64, '\0');
  size_t seed_len = 32, public_len = 32;
  auto* out = reinterpret_cast<unsigned char*>(pair.data());
  if (EVP_PKEY_get_raw_private_key(key.get(), out, &seed_len) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), out + 32, &public_len) != 1 || seed_len != 32 ||
      public_len != 32) {
    return OpenSslFailure("reading the new ed25519 SSH host key");
  }
  return pair;
}

}  // namespace ferry::crypto
