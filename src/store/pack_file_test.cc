#include "store/pack_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "store/sealed_chunk.h"
#include "store/store_test_env.h"

namespace ferry::store {
namespace {

using ::testing::HasSubstr;

// A pack of two sealed chunks with its index, laid out as PackChunkStore writes it.
struct TestPack {
  std::string bytes;
  std::vector<PackEntry> entries;
  PackReadAt Reader() const {
    return [this](uint64_t off, size_t len) -> Result<std::string> {
      if (off >= bytes.size()) return std::string();
      return bytes.substr(off, len);
    };
  }
};

TestPack MakePack(uint64_t seq) {
  TestPack p;
  p.bytes = EncodePackHeader(seq);
  for (int i = 0; i < 2; ++i) {
    const std::string sealed =
        *SealChunk(std::string(32, 'k'), RandomBytesForTest(5000 + i, 7 + i), 1);
    ChunkId id;
    id.bytes.fill(static_cast<uint8_t>(0x10 + i));
    p.entries.push_back({id, p.bytes.size(), static_cast<uint32_t>(sealed.size())});
    p.bytes += EncodePackRecordHeader(id, static_cast<uint32_t>(sealed.size())) + sealed;
  }
  p.bytes += EncodePackIndex(p.entries, p.bytes.size());
  return p;
}

TEST(PackFileTest, AnIndexReadsBackAndAScanFindsTheSameRecords) {
  TestPack p = MakePack(3);
  EXPECT_TRUE(CheckPackHeader(p.bytes.substr(0, kPackHeaderBytes), 3, "pack P").ok());
  auto entries = ReadPackIndex(p.Reader(), p.bytes.size(), "pack P");
  ASSERT_TRUE(entries.ok()) << entries.status().message();
  EXPECT_EQ(*entries, p.entries);
  PackScan scan = ScanPackRecords(p.Reader(), p.bytes.size());
  EXPECT_EQ(scan.entries, p.entries);
  EXPECT_FALSE(scan.stopped.empty()) << "it stops at the index";
  const PackEntry& e = p.entries[1];
  const std::string record = p.bytes.substr(e.offset, kPackRecordHeaderBytes + e.sealed_bytes);
  auto sealed = SealedBytesOfRecord(record, e.id, "chunk C");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(CheckSealedChunk(*sealed, "chunk C").ok());
  EXPECT_THAT(SealedBytesOfRecord(record, p.entries[0].id, "chunk C").status().message(),
              HasSubstr("chunk C: the record there names another chunk"));
}

TEST(PackFileTest, TheHeaderRefusesBadMagicNewerVersionReservedBytesAndAnotherNumber) {
  const std::string good = EncodePackHeader(3);
  std::string bad = good;
  bad[1] = 'X';
  Status st = CheckPackHeader(bad, 3, "pack P");
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("pack P: not a pack (wrong magic)"));
  bad = good;
  bad[4] = 2;
  st = CheckPackHeader(bad, 3, "pack P");
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("upgrade ferry"));
  bad = good;
  bad[6] = 1;
  EXPECT_EQ(CheckPackHeader(bad, 3, "pack P").code(), Status::Code::kCorruption);
  EXPECT_THAT(CheckPackHeader(good, 4, "pack P").message(), HasSubstr("renamed?"));
  EXPECT_EQ(CheckPackHeader(good.substr(0, 10), 3, "pack P").code(), Status::Code::kCorruption);
}

TEST(PackFileTest, AnIndexWithABadChecksumOrEntryOrNoTrailerIsRefused) {
  TestPack p = MakePack(3);
  const std::string good = p.bytes;
  // A flipped byte in an entry's offset.
  p.bytes[good.size() - kPackTrailerBytes - kPackIndexEntryBytes + 33] ^= 1;
  Status st = ReadPackIndex(p.Reader(), p.bytes.size(), "pack P").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("pack P: index checksum mismatch"));
  // The same with the checksum fixed up: the entry check catches it.
  p.bytes[good.size() - kPackTrailerBytes - kPackIndexEntryBytes + 39] ^= 0x40;
  const size_t index = good.size() - kPackTrailerBytes - 2 * kPackIndexEntryBytes;
  unsigned char md[32];
  EVP_Digest(p.bytes.data() + index, p.bytes.size() - 32 - index, md, nullptr, EVP_sha256(),
             nullptr);
  p.bytes.replace(p.bytes.size() - 32, 32, reinterpret_cast<char*>(md), 32);
  st = ReadPackIndex(p.Reader(), p.bytes.size(), "pack P").status();
  EXPECT_THAT(st.message(), HasSubstr("index entry 1 points outside the records"));
  // Torn: no trailer at the end.
  p.bytes = good.substr(0, good.size() - 10);
  st = ReadPackIndex(p.Reader(), p.bytes.size(), "pack P").status();
  EXPECT_THAT(st.message(), HasSubstr("no index at its end"));
}

TEST(PackFileTest, AScanStopsAtATornRecord) {
  TestPack p = MakePack(3);
  p.bytes.resize(p.entries[1].offset + 100);
  PackScan scan = ScanPackRecords(p.Reader(), p.bytes.size());
  ASSERT_EQ(scan.entries.size(), 1u);
  EXPECT_EQ(scan.end, p.entries[1].offset);
  EXPECT_THAT(scan.stopped, HasSubstr("offset " + std::to_string(p.entries[1].offset)));
}

}  // namespace
}  // namespace ferry::store
