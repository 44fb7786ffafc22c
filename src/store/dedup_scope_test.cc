#include "store/dedup_scope.h"

#include <gtest/gtest.h>

#include "crypto/aead.h"

namespace ferry::store {
namespace {

TEST(DedupScopeTest, IdsAreConvergentPerOwnerAndUnrelatedAcrossOwners) {
  DedupScope alice(std::string(32, 'a')), alice_again(std::string(32, 'a'));
  DedupScope bob(std::string(32, 'b'));
  const std::string page(65536, 'p');
  auto a = alice.KeysFor(page), a2 = alice_again.KeysFor(page), b = bob.KeysFor(page);
  ASSERT_TRUE(a.ok() && a2.ok() && b.ok());
  EXPECT_EQ(a->id, a2->id);
  EXPECT_EQ(a->key, a2->key);
  EXPECT_NE(a->id, b->id);
  EXPECT_NE(a->key, b->key);
  EXPECT_NE(a->id, alice.KeysFor(std::string(65536, 'q'))->id);
  EXPECT_EQ(*alice.IdFor(page), a->id);
}

TEST(DedupScopeTest, TheIdIsKeyedByTheSecretOverTheKeyAndIsNotTheKey) {
  const std::string secret(32, 's'), page = "a page of guest memory";
  DedupScope scope(secret);
  auto keys = scope.KeysFor(page);
  ASSERT_TRUE(keys.ok());
  const std::string key = *crypto::HmacSha256(secret, "key", page);
  EXPECT_EQ(keys->key, key);
  EXPECT_EQ(std::string(keys->id.View()), *crypto::HmacSha256(secret, "id-of-key", key));
  EXPECT_NE(std::string(keys->id.View()), key);
  // Not a bare hash of the key: without the secret the id cannot be computed from it.
  EXPECT_NE(std::string(keys->id.View()),
            *crypto::HmacSha256(std::string(32, '\0'), "id-of-key", key));
}

}  // namespace
}  // namespace ferry::store
