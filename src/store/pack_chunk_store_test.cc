#include "store/pack_chunk_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/files.h"
#include "crypto/temp_dir_for_test.h"
#include "store/sealed_chunk.h"
#include "store/store_test_env.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSmallPack = 256 << 10;

ChunkId Id(uint8_t b) {
  ChunkId id;
  id.bytes.fill(b);
  return id;
}

// A real sealed chunk of `bytes` random bytes (a pack only takes what checks as one).
std::string Sealed(uint8_t seed, size_t bytes = 64 << 10) {
  return *SealChunk(std::string(32, 'k'), RandomBytesForTest(bytes, seed), 1);
}

class PackChunkStoreTest : public ::testing::Test {
 protected:
  std::string Dir() const { return tmp_ / "packs"; }
  std::unique_ptr<PackChunkStore> Open(uint64_t pack_bytes = kSmallPack) {
    auto s = PackChunkStore::Open(Dir(), pack_bytes);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // Puts chunks `first`..`last` and syncs.
  static void PutRange(PackChunkStore& s, uint8_t first, uint8_t last) {
    for (int i = first; i <= last; ++i) {
      ASSERT_TRUE(s.Put(Id(static_cast<uint8_t>(i)), Sealed(static_cast<uint8_t>(i))).ok());
    }
    ASSERT_TRUE(s.Sync().ok());
  }
  std::vector<std::string> Files(const std::string& ext) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(Dir())) {
      const std::string name = e.path().filename();
      if (name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0)
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  crypto::TempDirForTest tmp_;
};

TEST_F(PackChunkStoreTest, ChunksGoIntoPacksOfTheGivenSizeAndComeBackAfterReopening) {
  auto s = Open();
  PutRange(*s, 1, 10);
  EXPECT_EQ(Files(".pack").size(), 3u) << "four 64 KiB chunks fill a 256 KiB pack";
  EXPECT_TRUE(Files(".tmp").empty());
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(*s->Get(Id(i)), Sealed(i));
  EXPECT_THAT(s->Describe(Id(1)), HasSubstr(s->PackPath(1) + " at offset 16"));
  s.reset();
  s = Open();
  EXPECT_EQ(s->List()->size(), 10u);
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(*s->Get(Id(i)), Sealed(i));
  EXPECT_EQ(s->Get(Id(11)).status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(*s->Has(Id(11)));
  EXPECT_TRUE(s->CheckContainers().empty());
  // The next pack gets a new number: nothing is ever appended to a published pack.
  PutRange(*s, 11, 11);
  EXPECT_EQ(Files(".pack").size(), 4u);
}

TEST_F(PackChunkStoreTest, APutTwiceIsStoredOnceAndNoChunkIsTakenThatIsNoSealedChunk) {
  auto s = Open();
  ASSERT_TRUE(s->Put(Id(1), Sealed(1)).ok());
  PutRange(*s, 1, 1);
  EXPECT_EQ(s->List()->size(), 1u);
  EXPECT_EQ(s->Put(Id(2), "short").code(), Status::Code::kInvalidArgument);
}

TEST_F(PackChunkStoreTest, WhatNoSyncFlushedIsATemporaryFileThatDiscardRemoves) {
  auto s = Open(uint64_t{64} << 20);
  PutRange(*s, 1, 1);
  ASSERT_TRUE(s->Put(Id(2), Sealed(2)).ok());
  s.reset();  // a crash before Sync
  EXPECT_EQ(Files(".tmp").size(), 1u);
  s = Open(uint64_t{64} << 20);
  EXPECT_FALSE(*s->Has(Id(2)));
  EXPECT_GT(*s->DiscardUnsynced(), 64u << 10);
  EXPECT_TRUE(Files(".tmp").empty());
  EXPECT_TRUE(*s->Has(Id(1)));
}

TEST_F(PackChunkStoreTest, APackWithoutItsIndexIsReadByItsRecords) {
  auto s = Open();
  PutRange(*s, 1, 3);
  s.reset();
  const std::string pack = Files(".pack").at(0);
  // The index (3 entries) and trailer gone: as if the flush had stopped after the records.
  struct stat st;
  ASSERT_EQ(::stat(pack.c_str(), &st), 0);
  ASSERT_EQ(::truncate(pack.c_str(), st.st_size - 3 * kPackIndexEntryBytes - kPackTrailerBytes), 0);
  s = Open();
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(*s->Get(Id(i)), Sealed(i));
  auto problems = s->CheckContainers();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("pack " + pack + ": no index at its end"));
  EXPECT_THAT(problems[0], HasSubstr("3 chunks recovered by reading its records"));
}

TEST_F(PackChunkStoreTest, ATornTailKeepsTheRecordsBeforeIt) {
  auto s = Open();
  PutRange(*s, 1, 3);
  s.reset();
  const std::string pack = Files(".pack").at(0);
  // Into the third record: the first two stay.
  ASSERT_EQ(::truncate(pack.c_str(), 16 + 2 * (36 + Sealed(1).size()) + 100), 0);
  s = Open();
  EXPECT_TRUE(*s->Has(Id(1)));
  EXPECT_TRUE(*s->Has(Id(2)));
  EXPECT_FALSE(*s->Has(Id(3)));
  auto problems = s->CheckContainers();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("2 chunks recovered"));
  EXPECT_THAT(problems[0], HasSubstr("torn or damaged record at offset"));
}

TEST_F(PackChunkStoreTest, AMissingPackLosesOnlyItsChunks) {
  auto s = Open();
  PutRange(*s, 1, 8);
  s.reset();
  ASSERT_EQ(::unlink(Files(".pack").at(0).c_str()), 0);
  s = Open();
  EXPECT_EQ(s->Get(Id(1)).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(*s->Get(Id(8)), Sealed(8));
  EXPECT_EQ(s->List()->size(), 4u);
}

TEST_F(PackChunkStoreTest, APackWithADamagedHeaderIsReportedAndKept) {
  auto s = Open();
  PutRange(*s, 1, 2);
  s.reset();
  const std::string pack = Files(".pack").at(0);
  std::string bytes = *ReadFile(pack);
  bytes[0] = 'X';
  ASSERT_TRUE(WriteFileAtomic(pack, bytes, 0600).ok());
  s = Open();
  EXPECT_FALSE(*s->Has(Id(1)));
  auto problems = s->CheckContainers();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("not a pack (wrong magic)"));
  EXPECT_EQ(*s->Remove({}), 0u);
  EXPECT_TRUE(PathExists(pack)) << "never removed: it cannot be read";
}

TEST_F(PackChunkStoreTest, RemoveDeletesDeadPacksAndRewritesMostlyDeadOnes) {
  auto s = Open();
  PutRange(*s, 1, 12);  // packs 1 (1-4), 2 (5-8), 3 (9-12)
  ASSERT_EQ(Files(".pack").size(), 3u);
  // Pack 1 all dead, pack 2 three quarters dead, pack 3 one quarter dead.
  auto freed = s->Remove({Id(1), Id(2), Id(3), Id(4), Id(5), Id(6), Id(7), Id(9)});
  ASSERT_TRUE(freed.ok()) << freed.status().message();
  const uint64_t record = 36 + Sealed(1).size();
  EXPECT_GE(*freed, 4 * record + 3 * record);
  std::vector<std::string> packs = Files(".pack");
  ASSERT_EQ(packs.size(), 2u);
  EXPECT_EQ(packs[0], s->PackPath(3)) << "kept: three quarters live";
  EXPECT_EQ(packs[1], s->PackPath(4)) << "pack 2's live chunk, rewritten";
  for (int i : {8, 10, 11, 12}) EXPECT_EQ(*s->Get(Id(i)), Sealed(i)) << i;
  for (int i : {1, 5, 9}) EXPECT_FALSE(*s->Has(Id(i))) << i;
  EXPECT_THAT(s->Describe(Id(8)), HasSubstr(s->PackPath(4)));
  s.reset();
  s = Open();
  // Chunk 9's record is still in pack 3: after a restart it is listed again, unreferenced, and
  // the next Collect forgets it again (its bytes go when pack 3 is rewritten).
  EXPECT_EQ(s->List()->size(), 5u);
  EXPECT_EQ(*s->Get(Id(8)), Sealed(8));
  EXPECT_TRUE(s->CheckContainers().empty());
}

TEST_F(PackChunkStoreTest, AChunkInTwoPacksAfterACrashedRewriteIsServedAndCollected) {
  auto s = Open();
  PutRange(*s, 1, 4);
  PutRange(*s, 1, 2);  // pack 2: copies of 1 and 2, as a rewrite that crashed before deleting
  s.reset();
  s = Open();
  EXPECT_EQ(s->List()->size(), 4u);
  EXPECT_THAT(s->Describe(Id(1)), HasSubstr(s->PackPath(1))) << "the older copy serves";
  ASSERT_TRUE(s->Remove({}).ok());
  EXPECT_EQ(Files(".pack").size(), 1u) << "pack 2 holds nothing live";
  EXPECT_EQ(*s->Get(Id(2)), Sealed(2));
}

}  // namespace
}  // namespace ferry::store
