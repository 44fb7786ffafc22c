#include "store/chunk_table.h"

#include <gtest/gtest.h>

namespace ferry::store {
namespace {

ChunkTable SampleTable() {
  ChunkTable t;
  t.chunk_bytes = 65536;
  BlobTable ram{"ram", 3 * 65536 + 10, std::vector<ChunkRef>(4)};
  for (size_t i : {size_t{0}, size_t{3}}) {
    ram.chunks[i].hole = false;
    ram.chunks[i].id.bytes.fill(static_cast<uint8_t>(i + 1));
    ram.chunks[i].key.fill(static_cast<uint8_t>(i + 7));
  }
  t.blobs.push_back(ram);
  t.blobs.push_back({"device-state", 0, {}});
  return t;
}

TEST(ChunkTableTest, EncodesAndDecodesTheSameTable) {
  const ChunkTable t = SampleTable();
  auto back = DecodeChunkTable(EncodeChunkTable(t), "m");
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->blobs.size(), 2u);
  EXPECT_EQ(back->chunk_bytes, 65536u);
  EXPECT_EQ(back->blobs[0].name, "ram");
  EXPECT_EQ(back->blobs[0].size, t.blobs[0].size);
  ASSERT_EQ(back->blobs[0].chunks.size(), 4u);
  EXPECT_TRUE(back->blobs[0].chunks[1].hole);
  EXPECT_FALSE(back->blobs[0].chunks[3].hole);
  EXPECT_EQ(back->blobs[0].chunks[3].id, t.blobs[0].chunks[3].id);
  EXPECT_EQ(back->blobs[0].chunks[3].key, t.blobs[0].chunks[3].key);
}

TEST(ChunkTableTest, RefusesInconsistentTables) {
  const std::string good = EncodeChunkTable(SampleTable());
  for (size_t keep = 0; keep < good.size(); keep += 7) {
    EXPECT_EQ(DecodeChunkTable(good.substr(0, keep), "m").status().code(),
              Status::Code::kCorruption)
        << keep;
  }
  EXPECT_FALSE(DecodeChunkTable(good + "x", "m").ok()) << "trailing bytes";
  ChunkTable t = SampleTable();
  t.blobs[0].size = 65536;  // 4 chunks do not fit one chunk's worth of bytes
  EXPECT_FALSE(DecodeChunkTable(EncodeChunkTable(t), "m").ok());
  t = SampleTable();
  t.blobs[1].name = "ram";
  EXPECT_FALSE(DecodeChunkTable(EncodeChunkTable(t), "m").ok()) << "a name twice";
  t = SampleTable();
  t.chunk_bytes = 1000;
  EXPECT_FALSE(DecodeChunkTable(EncodeChunkTable(t), "m").ok());
  t = SampleTable();
  t.blobs[0].name = "../ram";
  EXPECT_FALSE(DecodeChunkTable(EncodeChunkTable(t), "m").ok());
}

TEST(ChunkTableTest, TheSealedTableOpensOnlyWithItsKeyAndHold) {
  const std::string key(32, 'd');
  auto sealed = SealChunkTable(SampleTable(), key, "h-1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(OpenChunkTable(*sealed, key, "h-1", "m").ok());
  EXPECT_EQ(OpenChunkTable(*sealed, std::string(32, 'e'), "h-1", "m").status().code(),
            Status::Code::kCorruption);
  EXPECT_EQ(OpenChunkTable(*sealed, key, "h-2", "m").status().code(), Status::Code::kCorruption)
      << "a table moved into another hold's manifest";
}

}  // namespace
}  // namespace ferry::store
