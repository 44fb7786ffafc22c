#include "crypto/ssh_host_key_pair.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "crypto/openssl_util.h"

namespace ferry::crypto {
namespace {

// The public half must be the one the seed derives, or the guest would announce a fingerprint
// for a key its SSH server cannot sign with.
TEST(SshHostKeyPairTest, PublicHalfBelongsToTheSeedAndEachKeyIsNew) {
  auto first = NewSshHostKeyPair();
  auto second = NewSshHostKeyPair();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->size(), 64u);
  EXPECT_NE(*first, *second);
  const auto* seed = reinterpret_cast<const unsigned char*>(first->data());
  EvpPkeyPtr again(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32));
  ASSERT_TRUE(again);
  unsigned char public_key[32];
  size_t len = sizeof public_key;
  ASSERT_EQ(EVP_PKEY_get_raw_public_key(again.get(), public_key, &len), 1);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(public_key), len), first->substr(32));
}

}  // namespace
}  // namespace ferry::crypto
