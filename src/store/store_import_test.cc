// A hold that travels between two stores (Store::ExportHold, BeginImport): only the chunks the
// receiver lacks travel, and an import refuses what its sender did not seal.
#include <gtest/gtest.h>

#include "store/hold_import.h"
#include "store/store_test_fixture.h"

namespace ferry::store {
namespace {

TEST_F(StoreTest, AHoldTravelsToAnotherStoreWithOnlyTheChunksItLacks) {
  auto sender = OpenStore();
  auto receiver = env_.Open(env_.path("store-h2"), env_.h2(), kChunk);
  const std::string ram = RandomBytesForTest(1 << 20, 31);
  Seal(*sender, HeaderForTest("one", kOwnerA), ram);
  auto secret = sender->ExportOwnerSecret(kOwnerA);
  ASSERT_TRUE(secret.ok() && secret->has_value());
  EXPECT_TRUE(*receiver->AdoptOwnerSecret(kOwnerA, **secret));

  auto send = [&](const std::string& id) -> size_t {
    auto exported = sender->ExportHold(id);
    EXPECT_TRUE(exported.ok());
    auto import = receiver->BeginImport(*exported, env_.h1().cert.get());
    EXPECT_TRUE(import.ok()) << import.status().message();
    if (!import.ok()) return 0;
    for (const ChunkId& c : (*import)->needed()) {
      EXPECT_TRUE((*import)->PutChunk(c, *sender->ReadSealedChunk(c)).ok());
    }
    EXPECT_TRUE((*import)->Commit("durable").ok());
    return (*import)->needed().size();
  };
  EXPECT_EQ(send("one"), 17u);
  auto manifest = receiver->LoadHold("one");
  ASSERT_TRUE(manifest.ok()) << manifest.status().message();
  EXPECT_EQ(manifest->signer_host_id, "h2");
  EXPECT_TRUE(*Reconstitute(*receiver, "one", "ram") == ram);

  std::string sibling = ram;
  sibling[3 * kChunk] ^= 1;
  Seal(*sender, HeaderForTest("two", kOwnerA), sibling);
  EXPECT_EQ(send("two"), 1u) << "only the chunk the sibling changed travels";
  EXPECT_TRUE(*Reconstitute(*receiver, "two", "ram") == sibling);
}

TEST_F(StoreTest, AnImportRefusesForeignChunksAnIncompleteHoldAndTheWrongSender) {
  auto sender = OpenStore();
  auto receiver = env_.Open(env_.path("store-h2"), env_.h2(), kChunk);
  Seal(*sender, HeaderForTest("one"), RandomBytesForTest(1 << 18, 41));
  Seal(*sender, HeaderForTest("other"), RandomBytesForTest(1 << 18, 42));
  auto exported = sender->ExportHold("one");
  ASSERT_TRUE(exported.ok());
  EXPECT_EQ(receiver->BeginImport(*exported, env_.h2().cert.get()).status().code(),
            Status::Code::kCorruption)
      << "not signed by the host the TLS session says sent it";
  HoldExport wrong_key{exported->manifest, std::string(32, 'k')};
  EXPECT_EQ(receiver->BeginImport(wrong_key, env_.h1().cert.get()).status().code(),
            Status::Code::kCorruption);

  auto import = receiver->BeginImport(*exported, env_.h1().cert.get());
  ASSERT_TRUE(import.ok());
  auto foreign = (*sender->HoldChunkIds("other"))[0];
  EXPECT_EQ((*import)->PutChunk(foreign, *sender->ReadSealedChunk(foreign)).code(),
            Status::Code::kCorruption);
  const ChunkId first = (*import)->needed()[0];
  const ChunkId second = (*import)->needed()[1];
  EXPECT_EQ((*import)->PutChunk(first, *sender->ReadSealedChunk(second)).code(),
            Status::Code::kCorruption)
      << "a listed id with another chunk's bytes";
  EXPECT_EQ((*import)->Commit("durable").code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(receiver->ListHolds().empty());
}

}  // namespace
}  // namespace ferry::store
