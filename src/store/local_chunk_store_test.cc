#include "store/local_chunk_store.h"

#include <gtest/gtest.h>

#include "core/files.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::store {
namespace {

ChunkId Id(uint8_t b) {
  ChunkId id;
  id.bytes.fill(b);
  return id;
}

class LocalChunkStoreTest : public ::testing::TestWithParam<LocalChunkStore::SyncMode> {
 protected:
  crypto::TempDirForTest tmp_;
};

TEST_P(LocalChunkStoreTest, APutIsVisibleAfterSyncAndIdempotent) {
  auto chunks = LocalChunkStore::Open(tmp_ / "chunks", GetParam());
  ASSERT_TRUE(chunks.ok()) << chunks.status().message();
  auto& c = **chunks;
  ASSERT_TRUE(c.Put(Id(0xab), "sealed").ok());
  ASSERT_TRUE(c.Put(Id(0xab), "sealed").ok());
  ASSERT_TRUE(c.Sync().ok());
  EXPECT_TRUE(*c.Has(Id(0xab)));
  EXPECT_EQ(*c.Get(Id(0xab)), "sealed");
  EXPECT_TRUE(PathExists(tmp_ / ("chunks/ab/" + Id(0xab).Hex())));
  auto list = c.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].bytes, 6u);
  EXPECT_EQ(c.Get(Id(1)).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(*c.Remove(Id(0xab)), 6u);
  EXPECT_FALSE(*c.Has(Id(0xab)));
  EXPECT_EQ(*c.Remove(Id(0xab)), 0u);
}

TEST_P(LocalChunkStoreTest, WhatNoSyncPublishedIsDiscarded) {
  auto chunks = LocalChunkStore::Open(tmp_ / "chunks", GetParam());
  ASSERT_TRUE(chunks.ok());
  auto& c = **chunks;
  ASSERT_TRUE(c.Put(Id(1), "one").ok());
  ASSERT_TRUE(c.Sync().ok());
  ASSERT_TRUE(c.Put(Id(2), "two").ok());
  auto freed = c.DiscardUnsynced();
  ASSERT_TRUE(freed.ok());
  ASSERT_TRUE(c.Sync().ok());
  EXPECT_TRUE(*c.Has(Id(1)));
  if (GetParam() == LocalChunkStore::SyncMode::kSyncfs) {
    EXPECT_EQ(*freed, 3u);
    EXPECT_FALSE(*c.Has(Id(2))) << "never published";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, LocalChunkStoreTest,
                         ::testing::Values(LocalChunkStore::SyncMode::kSyncfs,
                                           LocalChunkStore::SyncMode::kFsyncEach),
                         [](const auto& info) {
                           return info.param == LocalChunkStore::SyncMode::kSyncfs ? "Syncfs"
                                                                                   : "FsyncEach";
                         });

}  // namespace
}  // namespace ferry::store
